// status page (being written)
