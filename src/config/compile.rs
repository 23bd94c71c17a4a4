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
use super::zonefile::{
    AllDownInput, GeoRulesInput, ProbeInput, RegionInput, ServiceInput, ZoneFileInput,
};
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

/// Static records grouped into RRsets by owner and type, each record with where it came from.
type RrSets = BTreeMap<(LowerName, u16), Vec<Sourced>>;

/// Where mistakes go: the zone file's name, its line index (byte offset → line) and the
/// diagnostics so far.
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
    /// Every zone of the directory, at most one per origin.
    pub zones: ZoneSet,
    /// The geo maps of all their services; a service's `map` is an index into this list.
    pub maps: Vec<Arc<GeoMap>>,
}

/// Compiles one zone file's text. `region_base` is the id of its first region in the zone set;
/// its services' geo maps are appended to `maps` (a service's `map` indexes it).
///
/// The phases run in a fixed order, and so do the mistakes they report: static records, the
/// checks on their RRsets, regions and geo rules, services, expectations. Only a TOML error, a
/// bad origin or a missing SOA stops early; otherwise every mistake of the file is reported.
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
    let mut zc = ZoneCompiler::new(file, text, &input, health)?;
    zc.asn_db = geo.is_some_and(|g| g.asn.is_some());

    let mut recs = zc.records();
    let signer = zc.dnssec_signer(&mut recs);
    let sets = group_rrsets(recs);
    let Some(soa) = zc.apex_soa(&sets) else {
        return Err(zc.cx.diags);
    };
    zc.check_apex_ns(&sets);
    zc.check_cnames(&sets);
    let cuts = delegation_cuts(&sets, &zc.lorigin);
    zc.check_occluded(&sets, &cuts);
    let dnames = zc.check_dnames(&sets);
    let mut tree = Tree {
        nodes: build_nodes(sets, &zc.lorigin, input.ttl),
        cuts,
        dnames,
    };

    let regions = zc.compile_regions(region_base);
    let mut shared = SharedMaps::new(geo, maps);
    let services = zc.compile_services(&mut tree, &regions, &mut shared);
    let expects = compile_expects(
        &mut zc.cx,
        &input.expect,
        &zc.origin,
        &services,
        &regions.by_name,
    );
    let mut zone = zc.finish(soa, tree, regions.list, services, expects)?;
    if let Some((signer, cache_size)) = signer {
        zone.dnssec = Some(super::signing::sign_at_load(&zone, signer, cache_size));
    }
    Ok(zone)
}

/// One zone file being compiled: its input, its origin and the mistakes found so far. Each
/// phase of [`compile_zone_file_text`] is a method; what a phase produces is handed to the next
/// as a value rather than stored here, so the order of the phases stays visible.
struct ZoneCompiler<'a> {
    cx: Ctx<'a>,
    input: &'a ZoneFileInput,
    health: &'a HealthDefaults,
    origin: Name,
    lorigin: LowerName,
    /// The line of `origin = …`, where zone-wide mistakes are reported.
    origin_line: Option<usize>,
    /// A digest of the zone file's text and its master file's, for comparing fleet members.
    digest: siphasher::sip::SipHasher13,
    /// Whether an ASN database is loaded (`asns` rules need one).
    asn_db: bool,
}

/// The zone's name tree as services are added to it, with the names a service must keep clear
/// of.
struct Tree {
    nodes: HashMap<LowerName, Node>,
    /// Owners of NS RRsets below the apex (zone cuts).
    cuts: Vec<LowerName>,
    /// Owners of DNAME RRsets.
    dnames: Vec<LowerName>,
}

/// The zone's regions (valid ones only), their indices by name, and the zone-wide `[geo]` rules.
struct Regions {
    list: Vec<Region>,
    by_name: HashMap<String, usize>,
    rules: GeoRules,
}

/// The origin as written, with the trailing dot implied; the root is refused.
fn parse_origin(s: &str) -> Result<Name, String> {
    let mut origin_s = s.trim().to_string();
    if !origin_s.ends_with('.') {
        origin_s.push('.');
    }
    match Name::from_ascii(&origin_s) {
        Ok(n) if !n.is_root() => Ok(n),
        Ok(_) => Err("origin must not be the root".into()),
        Err(e) => Err(format!("bad origin {origin_s:?}: {e}")),
    }
}

impl<'a> ZoneCompiler<'a> {
    /// Starts on `input` (parsed from `text`); fails only on a bad origin.
    fn new(
        file: &'a Path,
        text: &str,
        input: &'a ZoneFileInput,
        health: &'a HealthDefaults,
    ) -> Result<Self, Diagnostics> {
        let cx = Ctx {
            file,
            lines: Lines::new(text),
            diags: Diagnostics::default(),
        };
        let origin_line = cx.line(input.origin.span());
        let origin = parse_origin(input.origin.get_ref())
            .map_err(|msg| Diagnostics::one(file, origin_line, msg))?;
        let mut digest = siphasher::sip::SipHasher13::new();
        std::hash::Hasher::write(&mut digest, text.as_bytes());
        Ok(Self {
            cx,
            input,
            health,
            lorigin: LowerName::new(&origin),
            origin,
            origin_line,
            digest,
            asn_db: false,
        })
    }

    /// Every static record: the apex NS set, the `[soa]` table, inline records and the master
    /// file, in that order, with one spelling per owner. Records outside the zone are reported
    /// and dropped.
    fn records(&mut self) -> Vec<Sourced> {
        let mut recs = Vec::new();
        self.apex_ns(&mut recs);
        self.soa_table(&mut recs);
        self.inline_records(&mut recs);
        self.master_file(&mut recs);
        // One spelling per owner name (its first occurrence), and names inside NS, CNAME, PTR,
        // MX, SRV and SOA data in lower case, as NSD and Knot store them (RFC 4034 §6.2 lists
        // these types as having names without case).
        one_spelling(&mut recs);
        self.drop_outside_zone(&mut recs);
        recs
    }

    /// `ns = [...]`: the apex NS set, with the zone's default TTL.
    fn apex_ns(&mut self, recs: &mut Vec<Sourced>) {
        let input = self.input;
        for ns in &input.ns {
            let line = self.cx.line(ns.span());
            match resolve_name(ns.get_ref(), &self.origin) {
                Ok(target) => recs.push(Sourced {
                    record: Record::from_rdata(
                        self.origin.clone(),
                        input.ttl,
                        RData::NS(hickory_proto::rr::rdata::NS(target)),
                    ),
                    line,
                    file: None,
                }),
                Err(e) => self.cx.err(line, e),
            }
        }
    }

    /// `[soa]`: `mname` defaults to the first `ns`, `rname` to `hostmaster`.
    fn soa_table(&mut self, recs: &mut Vec<Sourced>) {
        let input = self.input;
        let Some(soa) = &input.soa else {
            return;
        };
        let line = self.cx.line(soa.span());
        let s = soa.get_ref();
        let mname = match &s.mname {
            Some(m) => resolve_name(m, &self.origin),
            None => match input.ns.first() {
                Some(ns) => resolve_name(ns.get_ref(), &self.origin),
                None => Err("soa.mname is not set and there is no ns to default to".to_string()),
            },
        };
        let rname = resolve_name(s.rname.as_deref().unwrap_or("hostmaster"), &self.origin);
        match (mname, rname) {
            (Ok(m), Ok(r)) => recs.push(Sourced {
                record: Record::from_rdata(
                    self.origin.clone(),
                    s.ttl.unwrap_or(input.ttl),
                    RData::SOA(SOA::new(
                        m, r, s.serial, s.refresh, s.retry, s.expire, s.minimum,
                    )),
                ),
                line,
                file: None,
            }),
            (Err(e), _) | (_, Err(e)) => self.cx.err(line, format!("soa: {e}")),
        }
    }

    /// `[[records]]`: one record per item of `data`.
    fn inline_records(&mut self, recs: &mut Vec<Sourced>) {
        let input = self.input;
        for r in &input.records {
            let line = self.cx.line(r.span());
            let r = r.get_ref();
            let Some(rtype) = record_type(&r.rtype) else {
                self.cx
                    .err(line, format!("unknown record type {:?}", r.rtype));
                continue;
            };
            let owner = match resolve_name(r.name.get_ref(), &self.origin) {
                Ok(n) => n,
                Err(e) => {
                    let name_line = self.cx.line(r.name.span());
                    self.cx.err(name_line, e);
                    continue;
                }
            };
            let ttl = r.ttl.unwrap_or(input.ttl);
            let data_line = self.cx.line(r.data.span());
            for data in r.data.get_ref().items() {
                match parse_rdata(&self.origin, rtype, data) {
                    Ok(rdata) => recs.push(Sourced {
                        record: Record::from_rdata(owner.clone(), ttl, rdata),
                        line,
                        file: None,
                    }),
                    Err(e) => self.cx.err(data_line, format!("{rtype} {data:?}: {e}")),
                }
            }
        }
    }

    /// `master_file`, relative to the zone file; its mistakes name its own file and line.
    fn master_file(&mut self, recs: &mut Vec<Sourced>) {
        let input = self.input;
        let Some(mf) = &input.master_file else {
            return;
        };
        let line = self.cx.line(mf.span());
        let path = self
            .cx
            .file
            .parent()
            .unwrap_or(Path::new("."))
            .join(mf.get_ref());
        let mtext = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) => {
                let msg = format!("master_file {}: cannot read: {e}", path.display());
                self.cx.err(line, msg);
                return;
            }
        };
        std::hash::Hasher::write(&mut self.digest, mtext.as_bytes());
        match super::master::parse_master_file(&path, &mtext, &self.origin, input.ttl) {
            Ok(list) => recs.extend(list.into_iter().map(|m| Sourced {
                record: Record::from_rdata(m.name, m.ttl, m.rdata),
                line: Some(m.line),
                file: Some(m.file),
            })),
            Err(e) => self
                .cx
                .diags
                .push(Diagnostic::new(&e.file, Some(e.line), e.msg)),
        }
    }

    /// Reports and drops every record whose owner is not in the zone.
    fn drop_outside_zone(&mut self, recs: &mut Vec<Sourced>) {
        recs.retain(|s| {
            let inside = self.lorigin.zone_of(&LowerName::new(&s.record.name));
            if !inside {
                let msg = format!(
                    "{} {} is outside the zone {}",
                    s.record.name,
                    s.record.record_type(),
                    self.origin
                );
                report(&mut self.cx, s, msg);
            }
            inside
        });
    }

    /// The SOA: exactly one, at the apex. Reports every misplaced or repeated SOA, and its
    /// absence (then `None`).
    fn apex_soa(&mut self, sets: &RrSets) -> Option<Record> {
        let mut soa_record = None;
        for ((name, t), list) in sets {
            if *t != u16::from(RecordType::SOA) {
                continue;
            }
            let first = &list[0];
            if *name != self.lorigin {
                let msg = format!("SOA at {} is not at the zone apex", first.record.name);
                report(&mut self.cx, first, msg);
            } else if list.len() > 1 {
                let msg = "SOA given twice (zone file and master file?)".to_string();
                report(&mut self.cx, &list[1], msg);
            } else {
                soa_record = Some(first.record.clone());
            }
        }
        if soa_record.is_none() {
            let msg = format!(
                "zone {} has no SOA ([soa] table or an SOA in master_file)",
                self.origin
            );
            self.cx.err(Some(1), msg);
        }
        soa_record
    }

    /// The apex must have an NS set.
    fn check_apex_ns(&mut self, sets: &RrSets) {
        if !sets.contains_key(&(self.lorigin.clone(), u16::from(RecordType::NS))) {
            let msg = format!("zone {} has no NS records (ns = [...])", self.origin);
            self.cx.err(self.origin_line, msg);
        }
    }

    /// CNAME: alone at its name, one record.
    fn check_cnames(&mut self, sets: &RrSets) {
        let mut names_with: HashMap<LowerName, Vec<RecordType>> = HashMap::new();
        for (name, t) in sets.keys() {
            names_with
                .entry(name.clone())
                .or_default()
                .push(RecordType::from(*t));
        }
        for ((name, t), list) in sets {
            if *t != u16::from(RecordType::CNAME) {
                continue;
            }
            let first = &list[0];
            if list.len() > 1 {
                let msg = format!("{} has more than one CNAME", first.record.name);
                report(&mut self.cx, &list[1], msg);
            }
            let others: Vec<String> = names_with[name]
                .iter()
                .filter(|t| **t != RecordType::CNAME)
                .map(|t| t.to_string())
                .collect();
            if !others.is_empty() {
                let msg = format!(
                    "CNAME at {} beside other data ({}): a CNAME must be alone at its name (RFC 1034 §3.6.2)",
                    first.record.name,
                    others.join(", ")
                );
                report(&mut self.cx, first, msg);
            }
        }
    }

    /// Below a zone cut only glue (A/AAAA) may be; at it, only NS, DS and glue.
    fn check_occluded(&mut self, sets: &RrSets, cuts: &[LowerName]) {
        for ((name, t), list) in sets {
            let rt = RecordType::from(*t);
            for cut in cuts {
                let below = cut.zone_of(name) && name != cut;
                let at_cut_not_ns = name == cut && !matches!(rt, RecordType::NS | RecordType::DS);
                if (below || at_cut_not_ns) && !matches!(rt, RecordType::A | RecordType::AAAA) {
                    let msg = format!(
                        "{} {rt} is hidden by the delegation at {cut} (only glue A/AAAA may be there)",
                        list[0].record.name
                    );
                    report(&mut self.cx, &list[0], msg);
                }
            }
        }
    }

    /// DNAME (RFC 6672): one record, and nothing below its owner (names there are synthesised).
    /// Returns the DNAME owners.
    fn check_dnames(&mut self, sets: &RrSets) -> Vec<LowerName> {
        let mut dnames = Vec::new();
        for ((name, t), list) in sets {
            if *t != u16::from(RecordType::DNAME) {
                continue;
            }
            if list.len() > 1 {
                let msg = format!("{} has more than one DNAME", list[0].record.name);
                report(&mut self.cx, &list[1], msg);
            }
            dnames.push(name.clone());
        }
        for ((name, t), list) in sets {
            if let Some(d) = dnames.iter().find(|d| d.zone_of(name) && name != *d) {
                let msg = format!(
                    "{} {} is hidden by the DNAME at {d} (names below a DNAME are synthesised)",
                    list[0].record.name,
                    RecordType::from(*t)
                );
                report(&mut self.cx, &list[0], msg);
            }
        }
        dnames
    }

    /// `[regions]` in the order written; a region with any mistake is left out, so later
    /// references to it report "unknown region". Then the zone's `[geo]` rules over them.
    fn compile_regions(&mut self, region_base: usize) -> Regions {
        let input = self.input;
        let mut list: Vec<Region> = Vec::new();
        let mut by_name: HashMap<String, usize> = HashMap::new();
        for (name, r) in &input.regions {
            if let Some(region) = self.compile_region(name, r, region_base + list.len()) {
                by_name.insert(name.clone(), list.len());
                list.push(region);
            }
        }
        let rules = match &input.geo {
            Some(g) => {
                let line = self.cx.line(g.span());
                compile_rules(
                    &mut self.cx,
                    line,
                    g.get_ref(),
                    &by_name,
                    "geo",
                    self.asn_db,
                )
            }
            None => GeoRules::default(),
        };
        Regions {
            list,
            by_name,
            rules,
        }
    }

    /// One region, with id `id` in the zone set; `None` after reporting its mistakes (all of
    /// them, not only the first).
    fn compile_region(
        &mut self,
        name: &str,
        r: &toml::Spanned<RegionInput>,
        id: usize,
    ) -> Option<Region> {
        let line = self.cx.line(r.span());
        let ri = r.get_ref();
        let mut ok = true;
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            let msg = format!("region name {name:?}: use letters, digits, '-' and '_'");
            self.cx.err(line, msg);
            ok = false;
        }
        let [lat, lon] = ri.location;
        if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
            self.cx.err(line, format!("region {name:?}: location [{lat}, {lon}] is not [latitude -90..90, longitude -180..180]"));
            ok = false;
        }
        let cname = match &ri.cname {
            Some(c) => match self.region_cname(line, name, ri, c) {
                Some(n) => Some(n),
                None => return None,
            },
            None => None,
        };
        let (vips, vips_ok) = if cname.is_some() {
            (Vec::new(), true)
        } else {
            self.region_vips(line, name, &ri.vips)
        };
        ok &= vips_ok;
        let min_vips_up = ri.min_vips_up.unwrap_or(1) as usize;
        if cname.is_none() && (min_vips_up == 0 || min_vips_up > vips.len().max(1)) {
            let msg = format!(
                "region {name:?}: min_vips_up {min_vips_up} must be 1–{}",
                vips.len().max(1)
            );
            self.cx.err(line, msg);
            ok = false;
        }
        let probes = match compile_probes(
            name,
            ri.probe.as_ref(),
            &ri.vip_probes,
            &vips,
            &self.health.probe,
        ) {
            Ok(p) => p,
            Err(e) => {
                self.cx.err(line, e);
                ok = false;
                Vec::new()
            }
        };
        ok &= self.check_bias_weight_cost(line, name, ri);
        ok.then(|| Region {
            name: name.to_string(),
            id,
            lat,
            lon,
            vips,
            cname,
            weight: ri.weight,
            cost: ri.cost,
            backup: ri.backup,
            bias: ri.bias,
            seed: hash::name_seed(name),
            probes,
            min_vips_up,
        })
    }

    /// A hostname region's target: an absolute name (or relative to the origin), and nothing
    /// that needs VIPs beside it (`vips`, `vip_probes`, `min_vips_up`, a `{vip}` probe).
    fn region_cname(
        &mut self,
        line: Option<usize>,
        name: &str,
        ri: &RegionInput,
        written: &str,
    ) -> Option<Name> {
        let bad = |cx: &mut Ctx<'_>, msg: String| cx.err(line, format!("region {name:?}: {msg}"));
        let mut ok = true;
        if !ri.vips.is_empty() {
            bad(&mut self.cx, "give vips or cname, not both".into());
            ok = false;
        }
        if !ri.vip_probes.is_empty() || ri.min_vips_up.is_some() {
            bad(
                &mut self.cx,
                "vip_probes and min_vips_up need VIPs; a cname region is probed as a whole".into(),
            );
            ok = false;
        }
        let per_vip = ri
            .probe
            .as_ref()
            .is_some_and(|p| super::probe::is_per_vip(&p.over(&self.health.probe)));
        if per_vip {
            bad(
                &mut self.cx,
                "the probe names {vip}, but a cname region has no VIPs: probe its hostname".into(),
            );
            ok = false;
        }
        let target = match resolve_name(written, &self.origin) {
            Ok(n) if n.is_root() => {
                bad(&mut self.cx, "cname \".\" is not a hostname".into());
                None
            }
            Ok(n) => Some(n),
            Err(e) => {
                bad(&mut self.cx, format!("cname: {e}"));
                None
            }
        };
        if ok { target } else { None }
    }

    /// A region's VIPs: addresses, none twice, at least one, at most 64. Returns those that
    /// parsed, and whether all was well.
    fn region_vips(
        &mut self,
        line: Option<usize>,
        name: &str,
        written: &[String],
    ) -> (Vec<IpAddr>, bool) {
        let mut ok = true;
        let mut vips: Vec<IpAddr> = Vec::new();
        for v in written {
            match v.trim().parse::<IpAddr>() {
                Ok(a) if vips.contains(&a) => {
                    self.cx
                        .err(line, format!("region {name:?}: VIP {a} listed twice"));
                    ok = false;
                }
                Ok(a) => vips.push(a),
                Err(_) => {
                    let msg = format!("region {name:?}: VIP {v:?} is not an IP address");
                    self.cx.err(line, msg);
                    ok = false;
                }
            }
        }
        if written.is_empty() {
            let msg = format!("region {name:?} has no VIP (give vips, or cname for a hostname)");
            self.cx.err(line, msg);
            ok = false;
        }
        if vips.len() > 64 {
            let msg = format!("region {name:?} has {} VIPs; at most 64", vips.len());
            self.cx.err(line, msg);
            ok = false;
        }
        (vips, ok)
    }

    /// A region's `bias` (−99…99), `weight` (1–65535) and `cost` (≥ 0); false when any is out
    /// of range.
    fn check_bias_weight_cost(
        &mut self,
        line: Option<usize>,
        name: &str,
        ri: &RegionInput,
    ) -> bool {
        let mut ok = true;
        if !(ri.bias.is_finite() && (-99.0..=99.0).contains(&ri.bias)) {
            let msg = format!("region {name:?}: bias {} is outside −99…99", ri.bias);
            self.cx.err(line, msg);
            ok = false;
        }
        if !(1..=65535).contains(&ri.weight) {
            let msg = format!("region {name:?}: weight {} is outside 1–65535", ri.weight);
            self.cx.err(line, msg);
            ok = false;
        }
        if !ri.cost.is_finite() || ri.cost < 0.0 {
            let msg = format!("region {name:?}: cost {} must be a number ≥ 0", ri.cost);
            self.cx.err(line, msg);
            ok = false;
        }
        ok
    }

    /// `[services]` in the order written; a service with a mistake that leaves nothing to build
    /// on is skipped after reporting it.
    fn compile_services(
        &mut self,
        tree: &mut Tree,
        regions: &Regions,
        shared: &mut SharedMaps<'_>,
    ) -> Vec<Service> {
        let input = self.input;
        let mut services: Vec<Service> = Vec::new();
        for (label, s) in &input.services {
            let index = services.len();
            if let Some(service) = self.compile_service(label, s, tree, regions, shared, index) {
                services.push(service);
            }
        }
        services
    }

    /// One service, which will be `services[index]`: its owner, regions, TTLs, all-down mode,
    /// geo rules, policy and map; its node (and `_explain` node) are added to `tree`.
    fn compile_service(
        &mut self,
        label: &str,
        s: &toml::Spanned<ServiceInput>,
        tree: &mut Tree,
        regions: &Regions,
        shared: &mut SharedMaps<'_>,
        index: usize,
    ) -> Option<Service> {
        let line = self.cx.line(s.span());
        let si = s.get_ref();
        let owner = self.service_owner(line, label, tree)?;
        let sregions = self.service_regions(line, label, si, regions)?;
        let degraded_ttl = self.service_ttls(line, label, si);
        let all_down = self.all_down(line, label, si, &regions.by_name)?;
        if LowerName::new(&owner) == self.lorigin {
            self.apex_without_names(line, label, &sregions, &regions.list, &all_down)?;
        }
        let rules = match &si.geo {
            Some(g) => {
                let what = format!("services.{label}.geo");
                compile_rules(&mut self.cx, line, g, &regions.by_name, &what, self.asn_db)
                    .over(&regions.rules)
            }
            None => regions.rules.clone(),
        };
        let (chain, score, shed) = compile_policy(&mut self.cx, line, label, si)?;
        let hash_prefix = si.hash_prefix.unwrap_or([24, 56]);
        if hash_prefix[0] > 32 || hash_prefix[1] > 128 {
            let msg = format!("service {label:?}: hash_prefix {hash_prefix:?} is beyond [32, 128]");
            self.cx.err(line, msg);
        }
        let with_distances = chain.contains(&Step::Score) && score.distance > 0.0;
        // Only a service that uses the zone's own rules can share a map with another.
        let shareable = si.geo.is_none();
        let map = shared.map_for(&regions.list, &sregions, &rules, with_distances, shareable);
        self.place_service(line, label, &owner, si.explain_txt, tree, index);
        Some(Service {
            name: owner,
            label: label.to_string(),
            regions: shared.region_list(&sregions),
            chain,
            score,
            shed,
            hash_prefix: (hash_prefix[0], hash_prefix[1]),
            explain_txt: si.explain_txt,
            ttl_follows_probes: si
                .ttl_follows_probes
                .unwrap_or(self.health.ttl_follows_probes),
            use_ecs: si.ecs == super::zonefile::EcsUseInput::Use,
            ttl: si.ttl,
            degraded_ttl,
            min_ttl: self.health.min_ttl,
            answers: si.answers as usize,
            all_down,
            map,
            rules,
        })
    }

    /// The service's owner name: inside the zone, holding no static data (at the apex: no
    /// static A or AAAA, the SOA, NS and the rest stay) and not at or below a delegation.
    fn service_owner(&mut self, line: Option<usize>, label: &str, tree: &Tree) -> Option<Name> {
        let owner = match resolve_name(label, &self.origin) {
            Ok(n) => n,
            Err(e) => {
                self.cx.err(line, format!("service {label:?}: {e}"));
                return None;
            }
        };
        let lowner = LowerName::new(&owner);
        let msg = if !self.lorigin.zone_of(&lowner) {
            format!(
                "service {label:?}: {owner} is outside the zone {}",
                self.origin
            )
        } else if lowner == self.lorigin {
            let clash: Vec<String> = tree
                .nodes
                .get(&lowner)
                .map(|n| {
                    n.rrsets
                        .iter()
                        .filter(|r| matches!(r.rtype, RecordType::A | RecordType::AAAA))
                        .map(|r| r.rtype.to_string())
                        .collect()
                })
                .unwrap_or_default();
            if clash.is_empty() {
                return Some(owner);
            }
            format!(
                "service {label:?} steers the apex, which also has static {}: remove them or the service",
                clash.join(" and ")
            )
        } else if let Some(node) = tree.nodes.get(&lowner)
            && !node.rrsets.is_empty()
        {
            let types: Vec<String> = node.rrsets.iter().map(|r| r.rtype.to_string()).collect();
            format!(
                "{owner} is both a service and static data ({}): a name is one or the other",
                types.join(", ")
            )
        } else if tree.cuts.iter().any(|c| c.zone_of(&lowner)) {
            format!("service {label:?}: {owner} is at or below a delegation")
        } else {
            return Some(owner);
        };
        self.cx.err(line, msg);
        None
    }

    /// A service at the apex cannot answer a CNAME (RFC 1034 §3.6.2: the apex holds SOA and
    /// NS, and a CNAME owner holds nothing else): no hostname region, no `fallback_cname`.
    fn apex_without_names(
        &mut self,
        line: Option<usize>,
        label: &str,
        sregions: &[usize],
        list: &[Region],
        all_down: &AllDown,
    ) -> Option<()> {
        let named: Vec<&str> = sregions
            .iter()
            .filter_map(|&i| list.get(i))
            .filter(|r| r.cname.is_some())
            .map(|r| r.name.as_str())
            .collect();
        let msg = if !named.is_empty() {
            format!(
                "service {label:?} is at the zone apex, where a CNAME cannot be answered, but its region(s) {} answer by cname: give them VIPs or list only VIP regions (`regions = [...]`)",
                named.join(", ")
            )
        } else if matches!(all_down, AllDown::Cname(_)) {
            format!(
                "service {label:?} is at the zone apex, where a CNAME cannot be answered: use another all_down than fallback_cname"
            )
        } else {
            return Some(());
        };
        self.cx.err(line, msg);
        None
    }

    /// The service's regions as indices: `regions` as listed (each once), or every region of
    /// the zone. `None` when none is left.
    fn service_regions(
        &mut self,
        line: Option<usize>,
        label: &str,
        si: &ServiceInput,
        regions: &Regions,
    ) -> Option<Vec<usize>> {
        let mut sregions = Vec::new();
        match &si.regions {
            Some(list) => {
                for r in list {
                    match regions.by_name.get(r) {
                        Some(&i) if !sregions.contains(&i) => sregions.push(i),
                        Some(_) => self.cx.err(
                            line,
                            format!("service {label:?}: region {r:?} listed twice"),
                        ),
                        None => self
                            .cx
                            .err(line, format!("service {label:?}: unknown region {r:?}")),
                    }
                }
            }
            None => sregions.extend(0..regions.list.len()),
        }
        if sregions.is_empty() {
            self.cx
                .err(line, format!("service {label:?} has no regions"));
            return None;
        }
        Some(sregions)
    }

    /// Checks `ttl` (at most a day), `answers` (at least 1) and `degraded_ttl` (at most `ttl`);
    /// returns `degraded_ttl`, by default `ttl / 2`.
    fn service_ttls(&mut self, line: Option<usize>, label: &str, si: &ServiceInput) -> u32 {
        if si.ttl > 86_400 {
            let msg = format!("service {label:?}: ttl {} is above 86400", si.ttl);
            self.cx.err(line, msg);
        }
        if si.answers == 0 {
            let msg = format!("service {label:?}: answers must be at least 1");
            self.cx.err(line, msg);
        }
        let degraded_ttl = si.degraded_ttl.unwrap_or(si.ttl / 2);
        if degraded_ttl > si.ttl {
            let msg = format!(
                "service {label:?}: degraded_ttl {degraded_ttl} is above ttl {}",
                si.ttl
            );
            self.cx.err(line, msg);
        }
        degraded_ttl
    }

    /// `all_down`, with `fallback_region` or `fallback_cname` exactly when it is `fallback`.
    fn all_down(
        &mut self,
        line: Option<usize>,
        label: &str,
        si: &ServiceInput,
        region_idx: &HashMap<String, usize>,
    ) -> Option<AllDown> {
        let msg = match (si.all_down, &si.fallback_region, &si.fallback_cname) {
            (AllDownInput::All, None, None) => return Some(AllDown::All),
            (AllDownInput::First, None, None) => return Some(AllDown::First),
            (AllDownInput::Nodata, None, None) => return Some(AllDown::NoData),
            (AllDownInput::Fallback, Some(r), None) => match region_idx.get(r) {
                Some(&i) => return Some(AllDown::Region(i)),
                None => {
                    format!("service {label:?}: fallback_region {r:?} is not a region of this zone")
                }
            },
            (AllDownInput::Fallback, None, Some(c)) => match resolve_name(c, &self.origin) {
                Ok(n) => return Some(AllDown::Cname(n)),
                Err(e) => format!("service {label:?}: fallback_cname: {e}"),
            },
            (AllDownInput::Fallback, _, _) => format!(
                "service {label:?}: all_down = \"fallback\" takes fallback_region or fallback_cname (one of them)"
            ),
            (_, _, _) => format!(
                "service {label:?}: fallback_region/fallback_cname need all_down = \"fallback\""
            ),
        };
        self.cx.err(line, msg);
        None
    }

    /// Gives the service `services[index]` its node (and empty non-terminals above it), and
    /// `_explain.<owner>` one when `explain_txt` is set. A service may not sit at or below a
    /// DNAME, and its `_explain` name may not hold data.
    fn place_service(
        &mut self,
        line: Option<usize>,
        label: &str,
        owner: &Name,
        explain_txt: bool,
        tree: &mut Tree,
        index: usize,
    ) {
        let lowner = LowerName::new(owner);
        if let Some(d) = tree.dnames.iter().find(|d| d.zone_of(&lowner)) {
            let msg = format!("service {label:?} is at or below the DNAME at {d}");
            self.cx.err(line, msg);
        }
        add_node(&mut tree.nodes, &lowner, &self.lorigin);
        if let Some(node) = tree.nodes.get_mut(&lowner) {
            node.service = Some(index);
        }
        if explain_txt {
            // `_explain.<name>` is answered by the service; it must not collide with data.
            if let Ok(n) = owner.prepend_label("_explain") {
                let ln = LowerName::new(&n);
                if tree.nodes.get(&ln).is_some_and(|n| !n.rrsets.is_empty()) {
                    let msg = format!("service {label:?}: explain_txt, but {n} holds data");
                    self.cx.err(line, msg);
                }
                add_node(&mut tree.nodes, &ln, &self.lorigin);
            }
        }
    }

    /// The zone, when no phase reported a mistake. RFC 2308 §3 sets the negative-answer SOA's
    /// TTL: "the minimum of the MINIMUM field of the SOA record and the TTL of the SOA itself".
    fn finish(
        self,
        soa: Record,
        tree: Tree,
        regions: Vec<Region>,
        services: Vec<Service>,
        expects: Vec<crate::zone::Expect>,
    ) -> Result<Zone, Diagnostics> {
        if !self.cx.diags.is_empty() {
            return Err(self.cx.diags);
        }
        let minimum = match &soa.data {
            RData::SOA(s) => s.minimum,
            _ => soa.ttl,
        };
        let mut negative_soa = soa.clone();
        negative_soa.ttl = soa.ttl.min(minimum);
        let nodes = tree.nodes;
        let has_cuts = nodes.iter().any(|(_, n)| n.cut);
        let has_dnames = !tree.dnames.is_empty();
        let max_labels = nodes.keys().map(|n| n.num_labels()).max().unwrap_or(0);
        Ok(Zone {
            digest: std::hash::Hasher::finish(&self.digest),
            origin: self.origin,
            lower_origin: self.lorigin,
            file: self.cx.file.to_path_buf(),
            soa,
            negative_soa,
            nodes,
            regions,
            services,
            expects,
            has_cuts,
            has_dnames,
            max_labels,
            dnssec: None,
        })
    }

    /// `[dnssec]`: the keys read, the policy checked, and the apex DNSKEY (and CDS, CDNSKEY)
    /// RRsets added to `recs`; `None` for an unsigned zone or after reporting a mistake.
    fn dnssec_signer(
        &mut self,
        recs: &mut Vec<Sourced>,
    ) -> Option<(Arc<crate::dnssec::Signer>, usize)> {
        let d = self.input.dnssec.as_ref()?;
        let line = self.cx.line(d.span());
        let base = self
            .cx
            .file
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        match super::signing::signer(d.get_ref(), &self.origin, &base) {
            Ok((signer, cache)) => {
                for s in recs.iter() {
                    let t = s.record.record_type();
                    if matches!(
                        t,
                        RecordType::DNSKEY | RecordType::CDS | RecordType::CDNSKEY
                    ) && LowerName::new(&s.record.name) == self.lorigin
                    {
                        self.cx.err(
                            s.line,
                            format!("{t} at the apex comes from [dnssec] keys: remove it from the zone data"),
                        );
                    }
                }
                for (_, set) in signer.apex_key_sets() {
                    recs.extend(set.into_iter().map(|record| Sourced {
                        record,
                        line,
                        file: None,
                    }));
                }
                Some((signer, cache))
            }
            Err(e) => {
                self.cx.err(line, format!("[dnssec]: {e}"));
                None
            }
        }
    }
}

/// Groups records into RRsets by owner (case-insensitively) and type.
fn group_rrsets(recs: Vec<Sourced>) -> RrSets {
    let mut sets = RrSets::new();
    for s in recs {
        let key = (
            LowerName::new(&s.record.name),
            u16::from(s.record.record_type()),
        );
        sets.entry(key).or_default().push(s);
    }
    sets
}

/// Owners of NS RRsets below the apex: the zone's delegations.
fn delegation_cuts(sets: &RrSets, lorigin: &LowerName) -> Vec<LowerName> {
    sets.keys()
        .filter(|(n, t)| *t == u16::from(RecordType::NS) && n != lorigin)
        .map(|(n, _)| n.clone())
        .collect()
}

/// The node tree of the static data: one node per owner and empty non-terminal, each RRset with
/// duplicates dropped and one TTL.
fn build_nodes(sets: RrSets, lorigin: &LowerName, default_ttl: u32) -> HashMap<LowerName, Node> {
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
        add_node(&mut nodes, &name, lorigin);
        if let Some(node) = nodes.get_mut(&name) {
            node.cut |= rtype == RecordType::NS && name != *lorigin;
            node.rrsets.push(RrSet { rtype, records });
        }
    }
    nodes
}

/// Where services' geo maps go (a service's `map` indexes `out`), and what later services of the
/// zone may reuse.
struct SharedMaps<'m> {
    geo: Option<&'m GeoDb>,
    out: &'m mut Vec<Arc<GeoMap>>,
    /// Services with the same regions and the zone's geo rules share one map: a zone with
    /// thousands of steered names over one region set reads the database once.
    by_regions: HashMap<(Vec<usize>, bool), usize>,
    /// One allocation per distinct region list.
    region_lists: HashMap<Vec<usize>, Arc<[usize]>>,
}

impl<'m> SharedMaps<'m> {
    fn new(geo: Option<&'m GeoDb>, out: &'m mut Vec<Arc<GeoMap>>) -> Self {
        Self {
            geo,
            out,
            by_regions: HashMap::new(),
            region_lists: HashMap::new(),
        }
    }

    /// The index in `out` of a map placing clients among `chosen` (indices into `all`) by
    /// `rules`: a new one, or, when `shareable`, the one an earlier service built for the
    /// same regions.
    fn map_for(
        &mut self,
        all: &[Region],
        chosen: &[usize],
        rules: &GeoRules,
        with_distances: bool,
        shareable: bool,
    ) -> usize {
        let sites: Vec<Site> = chosen
            .iter()
            .map(|&i| Site {
                index: i,
                lat: all[i].lat,
                lon: all[i].lon,
                bias: all[i].bias,
            })
            .collect();
        let (geo, out) = (self.geo, &mut *self.out);
        let mut build = || {
            out.push(Arc::new(GeoMap::build(geo, &sites, rules, with_distances)));
            out.len() - 1
        };
        if shareable {
            *self
                .by_regions
                .entry((chosen.to_vec(), with_distances))
                .or_insert_with(build)
        } else {
            build()
        }
    }

    /// `chosen` as a shared list, one allocation per distinct list.
    fn region_list(&mut self, chosen: &[usize]) -> Arc<[usize]> {
        self.region_lists
            .entry(chosen.to_vec())
            .or_insert_with(|| chosen.into())
            .clone()
    }
}

/// Reports `msg` at the record's line, in its own file when it came from a master file.
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
    asn_db: bool,
) -> GeoRules {
    let list = |cx: &mut Ctx<'_>, key: &str, names: &[String]| {
        rule_regions(cx, line, what, key, names, region_idx)
    };
    let mut rules = GeoRules::default();
    if !g.asns.is_empty() && !asn_db {
        cx.err(
            line,
            format!(
                "{what}: asns rules need an ASN database: set asn_geodata in the server config"
            ),
        );
    }
    for (a, names) in &g.asns {
        let digits = a
            .strip_prefix("AS")
            .or_else(|| a.strip_prefix("as"))
            .unwrap_or(a);
        match digits.parse::<u32>() {
            Ok(n) if n > 0 => {
                let l = list(cx, a, names);
                rules.asns.insert(n, l);
            }
            _ => cx.err(
                line,
                format!("{what}: {a:?} is not an AS number (e.g. \"AS64500\" or \"64500\")"),
            ),
        }
    }
    for (s, names) in &g.subdivisions {
        let parsed = s.split_once('-').and_then(|(c, sub)| {
            let (cc, sc) = (crate::geo::db_code(c), crate::geo::subdivision_code(sub));
            (cc != [0, 0] && sc != [0, 0, 0]).then_some((cc, sc))
        });
        match parsed {
            Some(key) => {
                let l = list(cx, s, names);
                rules.subdivisions.insert(key, l);
            }
            None => cx.err(
                line,
                format!("{what}: subdivision {s:?} is not an ISO 3166-2 code like \"US-CA\" or \"GB-ENG\""),
            ),
        }
    }
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
        rules.default = geo_default(cx, line, what, d, region_idx);
    }
    rules
}

/// The region indices of `names` (the list under `key` in `what`), reporting unknown names and
/// an empty list.
fn rule_regions(
    cx: &mut Ctx<'_>,
    line: Option<usize>,
    what: &str,
    key: &str,
    names: &[String],
    region_idx: &HashMap<String, usize>,
) -> Vec<usize> {
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
}

/// `default`: a location, a region list, or neither (the regions in listed order).
fn geo_default(
    cx: &mut Ctx<'_>,
    line: Option<usize>,
    what: &str,
    d: &super::zonefile::GeoDefaultInput,
    region_idx: &HashMap<String, usize>,
) -> GeoDefault {
    match (&d.location, &d.regions) {
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
        (None, Some(names)) => {
            GeoDefault::Regions(rule_regions(cx, line, what, "default", names, region_idx))
        }
        (None, None) => GeoDefault::ListedOrder,
    }
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
/// `shed_load` is set); with its score weights and shedding watermarks. `None` after reporting
/// a mistake. The checks on an explicit chain's shape run only when everything else is valid.
fn compile_policy(
    cx: &mut Ctx<'_>,
    line: Option<usize>,
    label: &str,
    si: &super::zonefile::ServiceInput,
) -> Option<(Vec<Step>, ScoreWeights, Option<Shed>)> {
    let shed = match si.shed_load {
        Some(sh) => compile_shed(cx, line, label, sh).map(Some),
        None => Some(None),
    };
    let score = compile_score(cx, line, label, si.score);
    let explicit = si
        .chain
        .as_ref()
        .map(|names| parse_chain(cx, line, label, names));
    let (Some(shed), Some(score)) = (shed, score) else {
        return None;
    };
    let chain = match explicit {
        Some(chain) => {
            let chain = chain?;
            check_chain(cx, line, label, &chain, shed.is_some()).then_some(chain)?
        }
        None => standard_chain(si.policy, shed.is_some()),
    };
    Some((chain, score, shed))
}

/// `shed_load`: 0 ≤ low < high, and `spill` (default 3) at least 1.
fn compile_shed(
    cx: &mut Ctx<'_>,
    line: Option<usize>,
    label: &str,
    sh: super::zonefile::ShedInput,
) -> Option<Shed> {
    let mut ok = true;
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
    ok.then_some(Shed {
        low: sh.low,
        high: sh.high,
        spill,
    })
}

/// `score`, over the default weights; every weight a number ≥ 0.
fn compile_score(
    cx: &mut Ctx<'_>,
    line: Option<usize>,
    label: &str,
    input: Option<super::zonefile::ScoreInput>,
) -> Option<ScoreWeights> {
    let d = ScoreWeights::default();
    let score = match input {
        Some(s) => ScoreWeights {
            distance: s.distance.unwrap_or(d.distance),
            latency: s.latency.unwrap_or(d.latency),
            load: s.load.unwrap_or(d.load),
            cost: s.cost.unwrap_or(d.cost),
        },
        None => d,
    };
    let mut ok = true;
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
    ok.then_some(score)
}

/// An explicit `chain`, step by step; `None` after reporting every unknown step.
fn parse_chain(
    cx: &mut Ctx<'_>,
    line: Option<usize>,
    label: &str,
    names: &[String],
) -> Option<Vec<Step>> {
    let mut ok = true;
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
    ok.then_some(chain)
}

/// An explicit chain's shape: it starts with `geo` or `priority`, has `eligible` once, and has
/// `shed` only when `shed_load` is set. False after reporting what is wrong.
fn check_chain(
    cx: &mut Ctx<'_>,
    line: Option<usize>,
    label: &str,
    chain: &[Step],
    has_shed: bool,
) -> bool {
    let mut ok = true;
    if !matches!(chain.first(), Some(Step::Geo | Step::Priority)) {
        cx.err(
            line,
            format!("service {label:?}: the chain must start with \"geo\" or \"priority\""),
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
    if chain.contains(&Step::Shed) && !has_shed {
        cx.err(
            line,
            format!("service {label:?}: a \"shed\" step needs shed_load = {{ low = …, high = … }}"),
        );
        ok = false;
    }
    ok
}

/// The chain a `policy` stands for, with `shed` appended when `shed_load` is set.
fn standard_chain(policy: super::zonefile::PolicyInput, has_shed: bool) -> Vec<Step> {
    use super::zonefile::PolicyInput as P;
    let mut chain = match policy {
        P::Proximity => vec![Step::Geo, Step::Eligible],
        P::Priority | P::Failover => vec![Step::Priority, Step::Eligible],
        P::Weighted => vec![Step::Geo, Step::Eligible, Step::Weighted],
        P::Score => vec![Step::Geo, Step::Eligible, Step::Score],
        P::Sticky => vec![Step::Geo, Step::Eligible, Step::Sticky],
    };
    if has_shed {
        chain.push(Step::Shed);
    }
    chain
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
