// world map (being written)
