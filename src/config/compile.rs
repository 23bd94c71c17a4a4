//! Zone files → [`ZoneSet`]: resolve names, parse record data, check every reference, and say
//! `file: line N: reason` for each mistake. Either the whole set compiles or nothing changes.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hickory_proto::rr::rdata::SOA;
use hickory_proto::rr::{LowerName, Name, RData, Record, RecordType};
use ipnet::IpNet;

use super::server::HealthDefaults;
use super::zonefile::{AllDownInput, GeoRulesInput, ProbeInput, ZoneFileInput};
use crate::diag::{Diagnostic, Diagnostics, Lines, from_toml_error};
use crate::geo::{GeoDb, GeoDefault, GeoMap, GeoRules, Site};
use crate::steer::{ScoreWeights, Shed, Step, hash};
use crate::zone::{AllDown, Node, ProbeTarget, Region, RrSet, Service, Zone, ZoneSet};

const CONTINENTS: [&str; 7] = ["AF", "AN", "AS", "EU", "NA", "OC", "SA"];

/// Compiles every `*.toml` in `dir` (sorted by name) into one zone set.
pub fn compile_zone_dir(
    dir: &Path,
    geo: Option<&GeoDb>,
    health: &HealthDefaults,
) -> Result<Compiled, Diagnostics> {
    let mut diags = Diagnostics::default();
    let mut maps = Vec::new();
    let entries = std::fs::read_dir(dir)
        .map_err(|e| Diagnostics::one(dir, None, format!("cannot read zones directory: {e}")))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml") && p.is_file())
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(Diagnostics::one(dir, None, "no zone files (*.toml)"));
    }
    let mut zones: Vec<Zone> = Vec::new();
    let mut origins: HashMap<LowerName, PathBuf> = HashMap::new();
    let mut region_base = 0;
    for file in files {
        let text = match std::fs::read_to_string(&file) {
            Ok(t) => t,
            Err(e) => {
                diags.push(Diagnostic::new(&file, None, format!("cannot read: {e}")));
                continue;
            }
        };
        match compile_zone_file_text(&file, &text, geo, health, region_base, &mut maps) {
            Ok(zone) => {
                if let Some(prev) = origins.get(&zone.lower_origin) {
                    diags.push(Diagnostic::new(
                        &file,
                        Some(1),
                        format!(
                            "zone {} is already defined in {}",
                            zone.origin,
                            prev.display()
                        ),
                    ));
                    continue;
                }
                origins.insert(zone.lower_origin.clone(), file.clone());
                region_base += zone.regions.len();
                zones.push(zone);
            }
            Err(d) => diags.0.extend(d.0),
        }
    }
    if diags.is_empty() {
        Ok(Compiled {
            zones: ZoneSet::new(zones),
            maps,
        })
    } else {
        Err(diags)
    }
}

/// Resolves `s` against `origin`: `@` is the origin, a trailing dot makes it absolute.
fn resolve_name(s: &str, origin: &Name) -> Result<Name, String> {
    let s = s.trim();
    if s == "@" {
        return Ok(origin.clone());
    }
    let name = Name::from_ascii(s).map_err(|e| format!("bad name {s:?}: {e}"))?;
    if s.ends_with('.') {
        Ok(name)
    } else {
        name.append_domain(origin)
            .map_err(|e| format!("bad name {s:?}: {e}"))
    }
}

/// A record with the line it came from.
struct Sourced {
    record: Record,
    line: Option<usize>,
    /// The file it came from when not the zone file (a master file).
    file: Option<PathBuf>,
}

struct Ctx<'a> {
    file: &'a Path,
    lines: Lines,
    diags: Diagnostics,
}

impl Ctx<'_> {
    fn err(&mut self, line: Option<usize>, msg: impl Into<String>) {
        self.diags.push(Diagnostic::new(self.file, line, msg));
    }
    fn line(&self, span: std::ops::Range<usize>) -> Option<usize> {
        Some(self.lines.line(span.start))
    }
}

/// The zones of a directory and the geo maps their services index.
#[derive(Debug)]
pub struct Compiled {
    pub zones: ZoneSet,
    pub maps: Vec<Arc<GeoMap>>,
}

/// Compiles one zone file's text. `region_base` is the id of its first region in the zone set;
/// its services' geo maps are appended to `maps` (a service's `map` indexes it).
pub fn compile_zone_file_text(
    file: &Path,
    text: &str,
    geo: Option<&GeoDb>,
    health: &HealthDefaults,
    region_base: usize,
    maps: &mut Vec<Arc<GeoMap>>,
) -> Result<Zone, Diagnostics> {
    let input: ZoneFileInput =
        toml::from_str(text).map_err(|e| Diagnostics(vec![from_toml_error(file, text, &e)]))?;
    let mut cx = Ctx {
        file,
        lines: Lines::new(text),
        diags: Diagnostics::default(),
    };

    let origin_line = cx.line(input.origin.span());
    let mut origin_s = input.origin.get_ref().trim().to_string();
    if !origin_s.ends_with('.') {
        origin_s.push('.');
    }
    let origin = match Name::from_ascii(&origin_s) {
        Ok(n) if !n.is_root() => n,
        Ok(_) => {
            return Err(Diagnostics::one(
                file,
                origin_line,
                "origin must not be the root",
            ));
        }
        Err(e) => {
            return Err(Diagnostics::one(
                file,
                origin_line,
                format!("bad origin {origin_s:?}: {e}"),
            ));
        }
    };
    let lorigin = LowerName::new(&origin);
    let default_ttl = input.ttl;
    let mut recs: Vec<Sourced> = Vec::new();

    // Apex NS set.
    for ns in &input.ns {
        let line = cx.line(ns.span());
        match resolve_name(ns.get_ref(), &origin) {
            Ok(target) => recs.push(Sourced {
                record: Record::from_rdata(
                    origin.clone(),
                    default_ttl,
                    RData::NS(hickory_proto::rr::rdata::NS(target)),
                ),
                line,
                file: None,
            }),
            Err(e) => cx.err(line, e),
        }
    }

    // SOA.
    if let Some(soa) = &input.soa {
        let line = cx.line(soa.span());
        let s = soa.get_ref();
        let mname = match &s.mname {
            Some(m) => resolve_name(m, &origin),
            None => match input.ns.first() {
                Some(ns) => resolve_name(ns.get_ref(), &origin),
                None => Err("soa.mname is not set and there is no ns to default to".to_string()),
            },
        };
        let rname = resolve_name(s.rname.as_deref().unwrap_or("hostmaster"), &origin);
        match (mname, rname) {
            (Ok(m), Ok(r)) => recs.push(Sourced {
                record: Record::from_rdata(
                    origin.clone(),
                    s.ttl.unwrap_or(default_ttl),
                    RData::SOA(SOA::new(
                        m, r, s.serial, s.refresh, s.retry, s.expire, s.minimum,
                    )),
                ),
                line,
                file: None,
            }),
            (Err(e), _) | (_, Err(e)) => cx.err(line, format!("soa: {e}")),
        }
    }

    // Inline records.
    for r in &input.records {
        let line = cx.line(r.span());
        let r = r.get_ref();
        let Some(rtype) = record_type(&r.rtype) else {
            cx.err(line, format!("unknown record type {:?}", r.rtype));
            continue;
        };
        let owner = match resolve_name(r.name.get_ref(), &origin) {
            Ok(n) => n,
            Err(e) => {
                let name_line = cx.line(r.name.span());
                cx.err(name_line, e);
                continue;
            }
        };
        let ttl = r.ttl.unwrap_or(default_ttl);
        let data_line = cx.line(r.data.span());
        for data in r.data.get_ref().items() {
            match parse_rdata(&origin, rtype, data) {
                Ok(rdata) => recs.push(Sourced {
                    record: Record::from_rdata(owner.clone(), ttl, rdata),
                    line,
                    file: None,
                }),
                Err(e) => cx.err(data_line, format!("{rtype} {data:?}: {e}")),
            }
        }
    }

    // Master file.
    if let Some(mf) = &input.master_file {
        let line = cx.line(mf.span());
        let path = file.parent().unwrap_or(Path::new(".")).join(mf.get_ref());
        match std::fs::read_to_string(&path) {
            Ok(mtext) => {
                match super::master::parse_master_file(&path, &mtext, &origin, default_ttl) {
                    Ok(list) => recs.extend(list.into_iter().map(|m| Sourced {
                        record: Record::from_rdata(m.name, m.ttl, m.rdata),
                        line: Some(m.line),
                        file: Some(m.file),
                    })),
                    Err(e) => cx.diags.push(Diagnostic::new(&e.file, Some(e.line), e.msg)),
                }
            }
            Err(e) => cx.err(
                line,
                format!("master_file {}: cannot read: {e}", path.display()),
            ),
        }
    }

    // One spelling per owner name (its first occurrence), and names inside NS, CNAME, PTR, MX,
    // SRV and SOA data in lower case, as NSD and Knot store them (RFC 4034 §6.2 lists these
    // types as having names without case).
    one_spelling(&mut recs);

    // Every record inside the zone.
    recs.retain(|s| {
        if lorigin.zone_of(&LowerName::new(&s.record.name)) {
            true
        } else {
            let msg = format!(
                "{} {} is outside the zone {}",
                s.record.name,
                s.record.record_type(),
                origin
            );
            match &s.file {
                Some(f) => cx.diags.push(Diagnostic::new(f, s.line, msg)),
                None => cx.err(s.line, msg),
            }
            false
        }
    });

    // Group into RRsets.
    let mut sets: BTreeMap<(LowerName, u16), Vec<Sourced>> = BTreeMap::new();
    for s in recs {
        let key = (
            LowerName::new(&s.record.name),
            u16::from(s.record.record_type()),
        );
        sets.entry(key).or_default().push(s);
    }

    // SOA: exactly one, at the apex.
    let mut soa_record = None;
    for ((name, t), list) in &sets {
        if *t != u16::from(RecordType::SOA) {
            continue;
        }
        let first = &list[0];
        if *name != lorigin {
            report(
                &mut cx,
                first,
                format!("SOA at {} is not at the zone apex", first.record.name),
            );
        } else if list.len() > 1 {
            report(
                &mut cx,
                &list[1],
                "SOA given twice (zone file and master file?)".to_string(),
            );
        } else {
            soa_record = Some(first.record.clone());
        }
    }
    let Some(soa) = soa_record else {
        cx.err(
            Some(1),
            format!("zone {origin} has no SOA ([soa] table or an SOA in master_file)"),
        );
        return Err(cx.diags);
    };
    if !sets.contains_key(&(lorigin.clone(), u16::from(RecordType::NS))) {
        cx.err(
            origin_line,
            format!("zone {origin} has no NS records (ns = [...])"),
        );
    }

    // CNAME: alone at its name, one record.
    let mut names_with: HashMap<LowerName, Vec<RecordType>> = HashMap::new();
    for (name, t) in sets.keys() {
        names_with
            .entry(name.clone())
            .or_default()
            .push(RecordType::from(*t));
    }
    for ((name, t), list) in &sets {
        if *t != u16::from(RecordType::CNAME) {
            continue;
        }
        let first = &list[0];
        if list.len() > 1 {
            report(
                &mut cx,
                &list[1],
                format!("{} has more than one CNAME", first.record.name),
            );
        }
        let others: Vec<String> = names_with[name]
            .iter()
            .filter(|t| **t != RecordType::CNAME)
            .map(|t| t.to_string())
            .collect();
        if !others.is_empty() {
            report(
                &mut cx,
                first,
                format!(
                    "CNAME at {} beside other data ({}): a CNAME must be alone at its name (RFC 1034 §3.6.2)",
                    first.record.name,
                    others.join(", ")
                ),
            );
        }
    }

    // Delegations and occluded data.
    let cuts: Vec<LowerName> = sets
        .keys()
        .filter(|(n, t)| *t == u16::from(RecordType::NS) && *n != lorigin)
        .map(|(n, _)| n.clone())
        .collect();
    for ((name, t), list) in &sets {
        let rt = RecordType::from(*t);
        for cut in &cuts {
            let below = cut.zone_of(name) && name != cut;
            let at_cut_not_ns = name == cut && !matches!(rt, RecordType::NS | RecordType::DS);
            if (below || at_cut_not_ns) && !matches!(rt, RecordType::A | RecordType::AAAA) {
                report(
                    &mut cx,
                    &list[0],
                    format!(
                        "{} {rt} is hidden by the delegation at {cut} (only glue A/AAAA may be there)",
                        list[0].record.name
                    ),
                );
            }
        }
    }

    // DNAME (RFC 6672): one record, and nothing below its owner (names there are synthesised).
    let dnames: Vec<LowerName> = sets
        .iter()
        .filter(|((_, t), _)| *t == u16::from(RecordType::DNAME))
        .map(|((n, _), list)| {
            if list.len() > 1 {
                report(
                    &mut cx,
                    &list[1],
                    format!("{} has more than one DNAME", list[0].record.name),
                );
            }
            n.clone()
        })
        .collect();
    for ((name, t), list) in &sets {
        if let Some(d) = dnames.iter().find(|d| d.zone_of(name) && name != *d) {
            report(
                &mut cx,
                &list[0],
                format!(
                    "{} {} is hidden by the DNAME at {d} (names below a DNAME are synthesised)",
                    list[0].record.name,
                    RecordType::from(*t)
                ),
            );
        }
    }

    // Nodes.
    let mut nodes: HashMap<LowerName, Node> = HashMap::new();
    for ((name, t), list) in sets {
        let rtype = RecordType::from(t);
        let ttl = list
            .iter()
            .map(|s| s.record.ttl)
            .min()
            .unwrap_or(default_ttl);
        let mut records: Vec<Record> = Vec::with_capacity(list.len());
        for s in list {
            let mut r = s.record;
            // RFC 2181 §5.2: TTLs of an RRset must match; take the lowest.
            r.ttl = ttl;
            if !records.iter().any(|x| x.data == r.data) {
                records.push(r);
            }
        }
        add_node(&mut nodes, &name, &lorigin);
        if let Some(node) = nodes.get_mut(&name) {
            node.cut |= rtype == RecordType::NS && name != lorigin;
            node.rrsets.push(RrSet { rtype, records });
        }
    }

    // Regions.
    let mut regions: Vec<Region> = Vec::new();
    let mut region_idx: HashMap<String, usize> = HashMap::new();
    for (name, r) in &input.regions {
        let line = cx.line(r.span());
        let ri = r.get_ref();
        let mut ok = true;
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            cx.err(
                line,
                format!("region name {name:?}: use letters, digits, '-' and '_'"),
            );
            ok = false;
        }
        let [lat, lon] = ri.location;
        if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
            cx.err(line, format!("region {name:?}: location [{lat}, {lon}] is not [latitude -90..90, longitude -180..180]"));
            ok = false;
        }
        let mut vips: Vec<IpAddr> = Vec::new();
        for v in &ri.vips {
            match v.trim().parse::<IpAddr>() {
                Ok(a) if vips.contains(&a) => {
                    cx.err(line, format!("region {name:?}: VIP {a} listed twice"));
                    ok = false;
                }
                Ok(a) => vips.push(a),
                Err(_) => {
                    cx.err(
                        line,
                        format!("region {name:?}: VIP {v:?} is not an IP address"),
                    );
                    ok = false;
                }
            }
        }
        if ri.vips.is_empty() {
            cx.err(line, format!("region {name:?} has no VIP"));
            ok = false;
        }
        if vips.len() > 64 {
            cx.err(
                line,
                format!("region {name:?} has {} VIPs; at most 64", vips.len()),
            );
            ok = false;
        }
        let min_vips_up = ri.min_vips_up.unwrap_or(1) as usize;
        if min_vips_up == 0 || min_vips_up > vips.len().max(1) {
            cx.err(
                line,
                format!(
                    "region {name:?}: min_vips_up {min_vips_up} must be 1–{}",
                    vips.len().max(1)
                ),
            );
            ok = false;
        }
        let probes = match compile_probes(
            name,
            ri.probe.as_ref(),
            &ri.vip_probes,
            &vips,
            &health.probe,
        ) {
            Ok(p) => p,
            Err(e) => {
                cx.err(line, e);
                ok = false;
                Vec::new()
            }
        };
        if !(ri.bias.is_finite() && (-99.0..=99.0).contains(&ri.bias)) {
            cx.err(
                line,
                format!("region {name:?}: bias {} is outside −99…99", ri.bias),
            );
            ok = false;
        }
        if !(1..=65535).contains(&ri.weight) {
            cx.err(
                line,
                format!("region {name:?}: weight {} is outside 1–65535", ri.weight),
            );
            ok = false;
        }
        if !ri.cost.is_finite() || ri.cost < 0.0 {
            cx.err(
                line,
                format!("region {name:?}: cost {} must be a number ≥ 0", ri.cost),
            );
            ok = false;
        }
        if ok {
            region_idx.insert(name.clone(), regions.len());
            regions.push(Region {
                name: name.clone(),
                id: region_base + regions.len(),
                lat,
                lon,
                vips,
                weight: ri.weight,
                cost: ri.cost,
                backup: ri.backup,
                bias: ri.bias,
                seed: hash::name_seed(name),
                probes,
                min_vips_up,
            });
        }
    }

    let zone_rules = match &input.geo {
        Some(g) => {
            let line = cx.line(g.span());
            compile_rules(&mut cx, line, g.get_ref(), &region_idx, "geo")
        }
        None => GeoRules::default(),
    };

    // Services.
    let mut services: Vec<Service> = Vec::new();
    // Services with the same regions and the zone's geo rules share one map: a zone with
    // thousands of steered names over one region set reads the database once.
    let mut shared_maps: HashMap<(Vec<usize>, bool), usize> = HashMap::new();
    let mut shared_regions: HashMap<Vec<usize>, Arc<[usize]>> = HashMap::new();
    for (label, s) in &input.services {
        let line = cx.line(s.span());
        let si = s.get_ref();
        let owner = match resolve_name(label, &origin) {
            Ok(n) => n,
            Err(e) => {
                cx.err(line, format!("service {label:?}: {e}"));
                continue;
            }
        };
        let lowner = LowerName::new(&owner);
        if !lorigin.zone_of(&lowner) {
            cx.err(
                line,
                format!("service {label:?}: {owner} is outside the zone {origin}"),
            );
            continue;
        }
        if lowner == lorigin {
            cx.err(
                line,
                format!("service {label:?}: the apex holds the SOA and NS, it cannot be steered"),
            );
            continue;
        }
        if let Some(node) = nodes.get(&lowner)
            && !node.rrsets.is_empty()
        {
            let types: Vec<String> = node.rrsets.iter().map(|r| r.rtype.to_string()).collect();
            cx.err(
                line,
                format!(
                    "{owner} is both a service and static data ({}): a name is one or the other",
                    types.join(", ")
                ),
            );
            continue;
        }
        if cuts.iter().any(|c| c.zone_of(&lowner)) {
            cx.err(
                line,
                format!("service {label:?}: {owner} is at or below a delegation"),
            );
            continue;
        }
        let mut sregions = Vec::new();
        match &si.regions {
            Some(list) => {
                for r in list {
                    match region_idx.get(r) {
                        Some(&i) if !sregions.contains(&i) => sregions.push(i),
                        Some(_) => cx.err(
                            line,
                            format!("service {label:?}: region {r:?} listed twice"),
                        ),
                        None => cx.err(line, format!("service {label:?}: unknown region {r:?}")),
                    }
                }
            }
            None => sregions.extend(0..regions.len()),
        }
        if sregions.is_empty() {
            cx.err(line, format!("service {label:?} has no regions"));
            continue;
        }
        if si.ttl > 86_400 {
            cx.err(
                line,
                format!("service {label:?}: ttl {} is above 86400", si.ttl),
            );
        }
        if si.answers == 0 {
            cx.err(
                line,
                format!("service {label:?}: answers must be at least 1"),
            );
        }
        let degraded_ttl = si.degraded_ttl.unwrap_or(si.ttl / 2);
        if degraded_ttl > si.ttl {
            cx.err(
                line,
                format!(
                    "service {label:?}: degraded_ttl {degraded_ttl} is above ttl {}",
                    si.ttl
                ),
            );
        }
        let all_down = match (si.all_down, &si.fallback_region, &si.fallback_cname) {
            (AllDownInput::All, None, None) => AllDown::All,
            (AllDownInput::First, None, None) => AllDown::First,
            (AllDownInput::Nodata, None, None) => AllDown::NoData,
            (AllDownInput::Fallback, Some(r), None) => {
                match region_idx.get(r) {
                    Some(&i) => AllDown::Region(i),
                    None => {
                        cx.err(line, format!("service {label:?}: fallback_region {r:?} is not a region of this zone"));
                        continue;
                    }
                }
            }
            (AllDownInput::Fallback, None, Some(c)) => match resolve_name(c, &origin) {
                Ok(n) => AllDown::Cname(n),
                Err(e) => {
                    cx.err(line, format!("service {label:?}: fallback_cname: {e}"));
                    continue;
                }
            },
            (AllDownInput::Fallback, _, _) => {
                cx.err(line, format!("service {label:?}: all_down = \"fallback\" takes fallback_region or fallback_cname (one of them)"));
                continue;
            }
            (_, _, _) => {
                cx.err(line, format!("service {label:?}: fallback_region/fallback_cname need all_down = \"fallback\""));
                continue;
            }
        };
        let rules = match &si.geo {
            Some(g) => compile_rules(
                &mut cx,
                line,
                g,
                &region_idx,
                &format!("services.{label}.geo"),
            )
            .over(&zone_rules),
            None => zone_rules.clone(),
        };
        let Some((chain, score, shed)) = compile_policy(&mut cx, line, label, si) else {
            continue;
        };
        let hash_prefix = si.hash_prefix.unwrap_or([24, 56]);
        if hash_prefix[0] > 32 || hash_prefix[1] > 128 {
            cx.err(
                line,
                format!("service {label:?}: hash_prefix {hash_prefix:?} is beyond [32, 128]"),
            );
        }
        let sites: Vec<Site> = sregions
            .iter()
            .map(|&i| Site {
                index: i,
                lat: regions[i].lat,
                lon: regions[i].lon,
                bias: regions[i].bias,
            })
            .collect();
        let with_distances = chain.contains(&Step::Score) && score.distance > 0.0;
        let mut build = || {
            maps.push(Arc::new(GeoMap::build(geo, &sites, &rules, with_distances)));
            maps.len() - 1
        };
        let map = if si.geo.is_none() {
            *shared_maps
                .entry((sregions.clone(), with_distances))
                .or_insert_with(build)
        } else {
            build()
        };
        if let Some(d) = dnames.iter().find(|d| d.zone_of(&lowner)) {
            cx.err(
                line,
                format!("service {label:?} is at or below the DNAME at {d}"),
            );
        }
        add_node(&mut nodes, &lowner, &lorigin);
        if let Some(node) = nodes.get_mut(&lowner) {
            node.service = Some(services.len());
        }
        if si.explain_txt {
            // `_explain.<name>` is answered by the service; it must not collide with data.
            if let Ok(n) = owner.prepend_label("_explain") {
                let ln = LowerName::new(&n);
                if nodes.get(&ln).is_some_and(|n| !n.rrsets.is_empty()) {
                    cx.err(
                        line,
                        format!("service {label:?}: explain_txt, but {n} holds data"),
                    );
                }
                add_node(&mut nodes, &ln, &lorigin);
            }
        }
        services.push(Service {
            name: owner,
            label: label.clone(),
            regions: shared_regions
                .entry(sregions.clone())
                .or_insert_with(|| sregions.as_slice().into())
                .clone(),
            chain,
            score,
            shed,
            hash_prefix: (hash_prefix[0], hash_prefix[1]),
            explain_txt: si.explain_txt,
            ttl: si.ttl,
            degraded_ttl,
            min_ttl: health.min_ttl,
            answers: si.answers as usize,
            all_down,
            map,
            rules,
        });
    }

    let expects = compile_expects(&mut cx, &input.expect, &origin, &services, &region_idx);

    if !cx.diags.is_empty() {
        return Err(cx.diags);
    }
    let minimum = match &soa.data {
        RData::SOA(s) => s.minimum,
        _ => soa.ttl,
    };
    let mut negative_soa = soa.clone();
    negative_soa.ttl = soa.ttl.min(minimum);
    let has_cuts = nodes.iter().any(|(_, n)| n.cut);
    let has_dnames = !dnames.is_empty();
    let max_labels = nodes.keys().map(|n| n.num_labels()).max().unwrap_or(0);
    Ok(Zone {
        origin,
        lower_origin: lorigin,
        file: file.to_path_buf(),
        soa,
        negative_soa,
        nodes,
        regions,
        services,
        expects,
        has_cuts,
        has_dnames,
        max_labels,
    })
}

fn report(cx: &mut Ctx<'_>, s: &Sourced, msg: String) {
    match &s.file {
        Some(f) => cx.diags.push(Diagnostic::new(f, s.line, msg)),
        None => cx.err(s.line, msg),
    }
}

/// Inserts `name` and every ancestor up to the origin (empty non-terminals).
fn add_node(nodes: &mut HashMap<LowerName, Node>, name: &LowerName, origin: &LowerName) {
    nodes.entry(name.clone()).or_default();
    let mut n = name.clone();
    while n.num_labels() > origin.num_labels() {
        n = n.base_name();
        nodes.entry(n.clone()).or_default();
    }
}

/// Gives every owner of `recs` the spelling of its first occurrence, and writes the names
/// inside typed RDATA in lower case.
fn one_spelling(recs: &mut [Sourced]) {
    use hickory_proto::rr::rdata::{CNAME, NS, PTR};
    let mut first: HashMap<LowerName, Name> = HashMap::new();
    for s in recs.iter() {
        first
            .entry(LowerName::new(&s.record.name))
            .or_insert_with(|| s.record.name.clone());
    }
    let lower = |n: &mut Name| *n = n.to_lowercase();
    for s in recs.iter_mut() {
        let r = &mut s.record;
        if let Some(f) = first.get(&LowerName::new(&r.name)) {
            r.name = f.clone();
        }
        match &mut r.data {
            RData::NS(NS(n)) | RData::CNAME(CNAME(n)) | RData::PTR(PTR(n)) => lower(n),
            RData::MX(mx) => lower(&mut mx.exchange),
            RData::SRV(srv) => lower(&mut srv.target),
            RData::SOA(soa) => {
                lower(&mut soa.mname);
                lower(&mut soa.rname);
            }
            _ => {}
        }
    }
}

/// A record type by mnemonic (`AAAA`) or RFC 3597 number (`TYPE65534`).
fn record_type(s: &str) -> Option<RecordType> {
    let s = s.trim().to_ascii_uppercase();
    if let Some(n) = s.strip_prefix("TYPE").and_then(|n| n.parse::<u16>().ok()) {
        return Some(RecordType::from(n));
    }
    s.parse::<RecordType>().ok()
}

/// Parses one RDATA in master-file syntax, relative names relative to `origin`.
///
/// TXT data that is not already quoted is taken as text and split into 255-byte strings, so
/// `data = "v=spf1 -all"` means what it says.
fn parse_rdata(origin: &Name, rtype: RecordType, data: &str) -> Result<RData, String> {
    let data = data.trim();
    if data.is_empty() {
        return Err("empty data".into());
    }
    if rtype == RecordType::TXT && !data.starts_with('"') {
        let quoted: Vec<String> = data
            .as_bytes()
            .chunks(255)
            .map(|chunk| {
                let mut q = String::from("\"");
                for &b in chunk {
                    match b {
                        b'"' | b'\\' => {
                            q.push('\\');
                            q.push(char::from(b));
                        }
                        0x20..=0x7e => q.push(char::from(b)),
                        _ => q.push_str(&format!("\\{b:03}")),
                    }
                }
                q.push('"');
                q
            })
            .collect();
        return super::master::parse_rdata(rtype, &quoted.join(" "), origin);
    }
    super::master::parse_rdata(rtype, data, origin)
}

/// Compiles `[geo]` rules: networks, countries, continents, default.
fn compile_rules(
    cx: &mut Ctx<'_>,
    line: Option<usize>,
    g: &GeoRulesInput,
    region_idx: &HashMap<String, usize>,
    what: &str,
) -> GeoRules {
    let list = |cx: &mut Ctx<'_>, key: &str, names: &[String]| -> Vec<usize> {
        let mut out = Vec::new();
        for n in names {
            match region_idx.get(n) {
                Some(&i) => out.push(i),
                None => cx.err(line, format!("{what}: {key}: unknown region {n:?}")),
            }
        }
        if names.is_empty() {
            cx.err(line, format!("{what}: {key}: empty region list"));
        }
        out
    };
    let mut rules = GeoRules::default();
    for (net, names) in &g.networks {
        match net.parse::<IpNet>() {
            Ok(n) if n.trunc() == n => {
                let l = list(cx, net, names);
                rules.networks.push((n, l));
            }
            Ok(n) => cx.err(
                line,
                format!(
                    "{what}: network {net} has host bits set (did you mean {}?)",
                    n.trunc()
                ),
            ),
            Err(_) => cx.err(line, format!("{what}: {net:?} is not a CIDR network")),
        }
    }
    for (c, names) in &g.countries {
        let code = crate::geo::db_code(c);
        if code == [0, 0] {
            cx.err(
                line,
                format!("{what}: country {c:?} is not a two-letter ISO 3166 code"),
            );
            continue;
        }
        let l = list(cx, c, names);
        rules.countries.insert(code, l);
    }
    for (c, names) in &g.continents {
        let up = c.to_ascii_uppercase();
        if !CONTINENTS.contains(&up.as_str()) {
            cx.err(
                line,
                format!(
                    "{what}: continent {c:?} is not one of {}",
                    CONTINENTS.join(" ")
                ),
            );
            continue;
        }
        let l = list(cx, c, names);
        rules.continents.insert(crate::geo::db_code(&up), l);
    }
    if let Some(d) = &g.default {
        rules.default = match (&d.location, &d.regions) {
            (Some(_), Some(_)) => {
                cx.err(
                    line,
                    format!("{what}: default takes location or regions, not both"),
                );
                GeoDefault::ListedOrder
            }
            (Some([lat, lon]), None) => {
                if !(-90.0..=90.0).contains(lat) || !(-180.0..=180.0).contains(lon) {
                    cx.err(
                        line,
                        format!("{what}: default location [{lat}, {lon}] is out of range"),
                    );
                }
                GeoDefault::Location(*lat, *lon)
            }
            (None, Some(names)) => GeoDefault::Regions(list(cx, "default", names)),
            (None, None) => GeoDefault::ListedOrder,
        };
    }
    rules
}

/// Compiles a region's probes: server defaults < the region's `probe` < the VIP's `vip_probes`.
/// One target for the region, or one per VIP when the target has `{vip}` or per-VIP settings.
fn compile_probes(
    region: &str,
    probe: Option<&ProbeInput>,
    vip_probes: &indexmap::IndexMap<String, ProbeInput>,
    vips: &[IpAddr],
    defaults: &ProbeInput,
) -> Result<Vec<ProbeTarget>, String> {
    let mut per_vip: HashMap<IpAddr, &ProbeInput> = HashMap::new();
    for (k, p) in vip_probes {
        let ip: IpAddr = k
            .parse()
            .map_err(|_| format!("region {region:?}: vip_probes key {k:?} is not an IP address"))?;
        if !vips.contains(&ip) {
            return Err(format!(
                "region {region:?}: vip_probes names {ip}, which is not one of its VIPs"
            ));
        }
        per_vip.insert(ip, p);
    }
    let base = probe.map(|p| p.over(defaults));
    let per_vip_mode = base.as_ref().is_some_and(super::probe::is_per_vip) || !per_vip.is_empty();
    let mut out = Vec::new();
    if !per_vip_mode {
        if let Some(b) = base {
            let spec = super::probe::compile(&b, None)
                .map_err(|e| format!("region {region:?}: probe: {e}"))?;
            out.push(ProbeTarget {
                vip: None,
                spec: std::sync::Arc::new(spec),
            });
        }
        return Ok(out);
    }
    for (i, ip) in vips.iter().enumerate() {
        let merged = match (per_vip.get(ip), &base) {
            (Some(v), Some(b)) => v.over(b),
            (Some(v), None) => v.over(defaults),
            (None, Some(b)) if super::probe::is_per_vip(b) => b.clone(),
            // A VIP with no probe of its own when only some VIPs have one: not probed.
            (None, _) => continue,
        };
        let spec = super::probe::compile(&merged, Some(*ip))
            .map_err(|e| format!("region {region:?}: probe of {ip}: {e}"))?;
        out.push(ProbeTarget {
            vip: Some(i),
            spec: std::sync::Arc::new(spec),
        });
    }
    Ok(out)
}

/// The service's chain: explicit `chain`, or the policy's standard one (plus `shed` when
/// `shed_load` is set); with its score weights and shedding watermarks.
fn compile_policy(
    cx: &mut Ctx<'_>,
    line: Option<usize>,
    label: &str,
    si: &super::zonefile::ServiceInput,
) -> Option<(Vec<Step>, ScoreWeights, Option<Shed>)> {
    let mut ok = true;
    let shed = match si.shed_load {
        Some(sh) => {
            if !(sh.low.is_finite() && sh.high.is_finite() && 0.0 <= sh.low && sh.low < sh.high) {
                cx.err(
                    line,
                    format!(
                        "service {label:?}: shed_load needs 0 ≤ low < high (got {} and {})",
                        sh.low, sh.high
                    ),
                );
                ok = false;
            }
            let spill = sh.spill.unwrap_or(3);
            if spill == 0 {
                cx.err(
                    line,
                    format!("service {label:?}: shed_load.spill must be at least 1"),
                );
                ok = false;
            }
            Some(Shed {
                low: sh.low,
                high: sh.high,
                spill,
            })
        }
        None => None,
    };
    let d = ScoreWeights::default();
    let score = match si.score {
        Some(s) => ScoreWeights {
            distance: s.distance.unwrap_or(d.distance),
            latency: s.latency.unwrap_or(d.latency),
            load: s.load.unwrap_or(d.load),
            cost: s.cost.unwrap_or(d.cost),
        },
        None => d,
    };
    for (k, v) in [
        ("distance", score.distance),
        ("latency", score.latency),
        ("load", score.load),
        ("cost", score.cost),
    ] {
        if !(v.is_finite() && v >= 0.0) {
            cx.err(
                line,
                format!("service {label:?}: score.{k} {v} must be a number ≥ 0"),
            );
            ok = false;
        }
    }
    let chain = match &si.chain {
        Some(names) => {
            let mut chain = Vec::new();
            for n in names {
                match Step::parse(n) {
                    Some(s) => chain.push(s),
                    None => {
                        cx.err(line, format!("service {label:?}: unknown chain step {n:?} (geo, priority, eligible, weighted, score, shed, sticky)"));
                        ok = false;
                    }
                }
            }
            if ok {
                if !matches!(chain.first(), Some(Step::Geo | Step::Priority)) {
                    cx.err(
                        line,
                        format!(
                            "service {label:?}: the chain must start with \"geo\" or \"priority\""
                        ),
                    );
                    ok = false;
                }
                if chain.iter().filter(|s| **s == Step::Eligible).count() != 1 {
                    cx.err(
                        line,
                        format!("service {label:?}: the chain must contain \"eligible\" once"),
                    );
                    ok = false;
                }
                if chain.contains(&Step::Shed) && shed.is_none() {
                    cx.err(line, format!("service {label:?}: a \"shed\" step needs shed_load = {{ low = …, high = … }}"));
                    ok = false;
                }
            }
            chain
        }
        None => {
            use super::zonefile::PolicyInput as P;
            let mut chain = match si.policy {
                P::Proximity => vec![Step::Geo, Step::Eligible],
                P::Priority | P::Failover => vec![Step::Priority, Step::Eligible],
                P::Weighted => vec![Step::Geo, Step::Eligible, Step::Weighted],
                P::Score => vec![Step::Geo, Step::Eligible, Step::Score],
                P::Sticky => vec![Step::Geo, Step::Eligible, Step::Sticky],
            };
            if shed.is_some() {
                chain.push(Step::Shed);
            }
            chain
        }
    };
    ok.then_some((chain, score, shed))
}

fn compile_expects(
    cx: &mut Ctx<'_>,
    input: &[toml::Spanned<super::zonefile::ExpectInput>],
    origin: &Name,
    services: &[Service],
    region_idx: &HashMap<String, usize>,
) -> Vec<crate::zone::Expect> {
    let mut out = Vec::new();
    for e in input {
        let line = cx.line(e.span());
        let e = e.get_ref();
        let owner = resolve_name(&e.service, origin)
            .ok()
            .map(|n| LowerName::new(&n));
        let Some(service) =
            owner.and_then(|o| services.iter().position(|s| LowerName::new(&s.name) == o))
        else {
            cx.err(
                line,
                format!("expect: {:?} is not a service of this zone", e.service),
            );
            continue;
        };
        let (client, prefix) = match e.client.split_once('/') {
            Some((a, p)) => (a.parse::<IpAddr>().ok(), p.parse::<u8>().ok()),
            None => (e.client.parse::<IpAddr>().ok(), None),
        };
        let Some(client) = client else {
            cx.err(
                line,
                format!("expect: client {:?} is not an address or network", e.client),
            );
            continue;
        };
        let family = match e.rtype.as_deref().map(str::to_ascii_uppercase).as_deref() {
            None | Some("A") => crate::steer::Family::V4,
            Some("AAAA") => crate::steer::Family::V6,
            Some(t) => {
                cx.err(line, format!("expect: type {t:?} is not A or AAAA"));
                continue;
            }
        };
        let names = |list: &[String], cx: &mut Ctx<'_>| -> Vec<usize> {
            list.iter()
                .filter_map(|n| match region_idx.get(n) {
                    Some(&i) => Some(i),
                    None => {
                        cx.err(line, format!("expect: unknown region {n:?}"));
                        None
                    }
                })
                .collect()
        };
        let down = names(&e.down, cx);
        let regions = names(&e.regions, cx);
        let keys: Vec<String> = e.load.keys().cloned().collect();
        let load_regions = names(&keys, cx);
        let load = load_regions
            .into_iter()
            .zip(e.load.values().copied())
            .collect();
        out.push(crate::zone::Expect {
            line,
            service,
            client,
            prefix,
            family,
            down,
            load,
            regions,
        });
    }
    out
}
