//! restrict's plan: a pure function of doctor's facts and the allowed networks.
//!
//! The order never opens a wider path, even for a moment:
//! 1. add the rules that only add (the allowed networks, and the other ports
//!    of a port range being narrowed), while they cannot match anything new;
//! 2. revoke the wide rules that match nothing yet (a CIDR rule that misses
//!    the endpoint's address while Preserve Client IP is off), so that
//!    turning it on cannot bring them to life;
//! 3. turn on Preserve Client IP;
//! 4. revoke the rest of the wide rules (the endpoint's group, CIDRs that
//!    hold the endpoint's address), and add any allowed network that does;
//! 5. add the endpoint's missing outbound rule last: until it exists no
//!    tunnel reaches the instance, so the first path it opens is the
//!    restricted one.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde::Serialize;

use crate::access::{
    Check, ClientAddr, Facts, Peer, Rule, Status, evaluate, join, rules_of, wider_than_expected,
};

/// The description of every rule restrict adds.
pub const DESCRIPTION: &str = "added by eic-ssh restrict: EC2 Instance Connect Endpoint clients";

/// What a change does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    AuthorizeIngress,
    AuthorizeEgress,
    PreserveClientIp,
    RevokeIngress,
}

/// One change, as the plan shows it and apply makes it.
#[derive(Debug, Clone, Serialize)]
pub struct Change {
    /// 1-based, in the order of application.
    pub step: usize,
    pub action: Action,
    /// The security group or endpoint changed.
    pub resource: String,
    /// What changes, in words.
    pub what: String,
    /// Why.
    pub why: String,
    /// The equivalent `aws` command.
    pub command: String,
    /// The `aws` command that undoes it (for a revoke: restores the rule).
    pub undo: String,
    /// The rule added or revoked.
    #[serde(skip)]
    pub rule: Option<Rule>,
}

/// Whether the plan can be applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PlanStatus {
    /// Changes to make.
    Changes,
    /// Nothing to change.
    AlreadyRestricted,
    /// Nothing eic-ssh can change, but a rule allows a prefix list whose
    /// entries it cannot check: the restriction is not confirmed.
    Unconfirmed,
    /// The restriction cannot be reached this way; see `refusals`.
    Refused,
}

/// The whole plan.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub instance: String,
    pub endpoint: Option<String>,
    pub port: u16,
    pub allow: Vec<String>,
    pub status: PlanStatus,
    pub changes: Vec<Change>,
    /// Why the plan cannot be applied (empty when it can).
    pub refusals: Vec<String>,
    pub warnings: Vec<String>,
    /// Other instances and resources that use a group the plan changes.
    pub shared_with: Vec<String>,
    /// Other instances behind the endpoint whose Preserve Client IP the
    /// plan turns on (the setting is the endpoint's, for all of them).
    pub endpoint_shared_with: Vec<String>,
    /// Doctor's checks 3 to 7 on the state after the changes.
    pub end_state: Vec<Check>,
    /// Whether this machine's public address is inside `--allow`, so that
    /// it can still connect once the restriction holds.
    pub client_address: ClientVsAllow,
    /// The instance groups the plan changes.
    #[serde(skip)]
    pub touched_groups: Vec<String>,
    /// Rules that allow prefix lists, whose entries are not checked.
    #[serde(skip)]
    pub unchecked: Vec<String>,
}

/// This machine's public address against `--allow`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum ClientVsAllow {
    /// Inside: this machine keeps its way in.
    Inside { ip: Ipv4Addr },
    /// Outside: once applied, this machine is shut out too.
    Outside { ip: Ipv4Addr },
    /// It could not be learned.
    Unknown { reason: String },
    /// `--offline`.
    NotChecked,
}

impl ClientVsAllow {
    /// Where `client` stands against `allow`.
    pub fn of(client: &ClientAddr, allow: &[Ipv4Net]) -> ClientVsAllow {
        match client {
            ClientAddr::Given(ip) | ClientAddr::Discovered(ip) => {
                match allow.iter().any(|net| net.contains(ip)) {
                    true => ClientVsAllow::Inside { ip: *ip },
                    false => ClientVsAllow::Outside { ip: *ip },
                }
            }
            ClientAddr::Failed(why) => ClientVsAllow::Unknown {
                reason: why.clone(),
            },
            ClientAddr::Offline => ClientVsAllow::NotChecked,
        }
    }
}

/// Shell-quote one word with single quotes.
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// `--ip-permissions` for one rule, as JSON (exact for any description).
fn ip_permissions(r: &Rule, with_description: bool) -> String {
    let (key, mut peer) = match &r.peer {
        Peer::Cidr(n) => ("IpRanges", serde_json::json!({ "CidrIp": n.to_string() })),
        Peer::Group(g) => ("UserIdGroupPairs", serde_json::json!({ "GroupId": g })),
        Peer::PrefixList(p) => ("PrefixListIds", serde_json::json!({ "PrefixListId": p })),
        Peer::CidrV6(c) => ("Ipv6Ranges", serde_json::json!({ "CidrIpv6": c })),
        Peer::Unknown => ("IpRanges", serde_json::json!({})),
    };
    if let (true, Some(d)) = (with_description, &r.description) {
        peer["Description"] = serde_json::json!(d);
    }
    let perm = serde_json::json!([{
        "IpProtocol": r.protocol,
        "FromPort": r.from_port,
        "ToPort": r.to_port,
        key: [peer],
    }]);
    shell_quote(&escape_unprintable(&perm.to_string()))
}

/// JSON text with the characters serde_json leaves as they are but a
/// terminal acts on (DEL, C1 controls, bidirectional controls) written as
/// `\uXXXX` escapes: the same JSON, so the command stays exact (a rule's
/// description is anyone's text), and safe to print. Such characters can
/// only be inside strings, where the escape is valid.
fn escape_unprintable(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        if c.is_control() || crate::text::is_bidi_control(c) {
            out.push_str(&format!("\\u{:04x}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    out
}

fn direction(egress: bool) -> &'static str {
    if egress { "egress" } else { "ingress" }
}

/// What a rule allows, without its id: `tcp/22 from 203.0.113.0/24`.
pub fn rule_words(r: &Rule) -> String {
    let text = r.text();
    text.split_once(": ")
        .map_or(text.clone(), |(_, w)| w.to_owned())
}

fn authorize(step: usize, rule: Rule, what: String, why: String, aws: &str) -> Change {
    let dir = direction(rule.egress);
    let g = &rule.group_id;
    Change {
        step,
        action: if rule.egress {
            Action::AuthorizeEgress
        } else {
            Action::AuthorizeIngress
        },
        resource: g.clone(),
        what,
        why,
        command: format!(
            "aws ec2 authorize-security-group-{dir} --group-id {g} --ip-permissions {}{aws}",
            ip_permissions(&rule, true)
        ),
        undo: format!(
            "aws ec2 revoke-security-group-{dir} --group-id {g} --ip-permissions {}{aws}",
            ip_permissions(&rule, false)
        ),
        rule: Some(rule),
    }
}

fn revoke(step: usize, rule: &Rule, why: String, aws: &str) -> Change {
    let g = &rule.group_id;
    Change {
        step,
        action: Action::RevokeIngress,
        resource: g.clone(),
        what: format!("revoke {}", rule.text()),
        why,
        command: format!(
            "aws ec2 revoke-security-group-ingress --group-id {g} --security-group-rule-ids {}{aws}",
            rule.id
        ),
        undo: format!(
            "aws ec2 authorize-security-group-ingress --group-id {g} --ip-permissions {}{aws}",
            ip_permissions(rule, true)
        ),
        rule: Some(rule.clone()),
    }
}

/// Whether two networks share any address.
fn overlaps(a: &Ipv4Net, b: &Ipv4Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

impl Plan {
    fn new(f: &Facts) -> Plan {
        Plan {
            instance: f.instance_id.clone(),
            endpoint: None,
            port: f.port,
            allow: f.expect.iter().map(ToString::to_string).collect(),
            status: PlanStatus::Refused,
            changes: Vec::new(),
            refusals: Vec::new(),
            warnings: Vec::new(),
            shared_with: Vec::new(),
            end_state: Vec::new(),
            client_address: ClientVsAllow::of(&f.client, &f.expect),
            touched_groups: Vec::new(),
            endpoint_shared_with: Vec::new(),
            unchecked: Vec::new(),
        }
    }

    fn refused(mut self, why: String) -> Plan {
        self.refusals.push(why);
        self.status = PlanStatus::Refused;
        self
    }
}

/// The plan that restricts tcp/`f.port` of `f.instance` to `f.expect`.
pub fn make_plan(f: &Facts) -> Plan {
    let plan = Plan::new(f);
    let aws = f.aws_args.as_str();
    let port = f.port;
    let allow = &f.expect;
    let instance = match &f.instance {
        Ok(i) => i,
        Err(e) => return plan.refused(format!("The instance could not be looked up: {e}.")),
    };
    if let Err(e) = &f.endpoints {
        return plan.refused(format!("The endpoints could not be listed: {e}."));
    }
    let Some((ep, _)) = f.chosen_endpoint() else {
        let vpc = instance.vpc_id.as_deref().unwrap_or("its VPC");
        let subnet = instance.subnet_id.as_deref().unwrap_or("<subnet-id>");
        let what = match &f.eice_id {
            Some(id) => format!("Endpoint {id} was not found or is not usable"),
            None => format!("There is no usable EC2 Instance Connect Endpoint in {vpc}"),
        };
        return plan.refused(format!(
            "{what}. Create one with Preserve Client IP on: aws ec2 create-instance-connect-endpoint --subnet-id {subnet} --preserve-client-ip{aws}"
        ));
    };
    let mut plan = plan;
    plan.endpoint = Some(ep.id.clone());
    let kind = ep.ip_address_type.as_deref().unwrap_or("ipv4");
    if kind != "ipv4" {
        let subnet = ep.subnet_id.as_deref().unwrap_or("<subnet-id>");
        return plan.refused(format!(
            "{} is a {kind} endpoint, and Preserve Client IP works with IPv4 endpoints only (AWS refuses it: \"Client IP preservation isn't supported for Dualstack and IPv6\"). Without it the instance sees the endpoint's address, never the client's, so no security group rule can restrict by client network. Use an IPv4 endpoint (aws ec2 create-instance-connect-endpoint --subnet-id {subnet} --ip-address-type ipv4 --preserve-client-ip{aws}) and rerun with --eice-id, or restrict with IAM instead: a Deny on ec2-instance-connect:OpenTunnel for this endpoint with a NotIpAddress condition on aws:SourceIp.",
            ep.id
        ));
    }
    let rules = match &f.rules {
        Ok(r) => r,
        Err(e) => {
            return plan.refused(format!(
                "The security group rules could not be read: {e}. Grant ec2:DescribeSecurityGroupRules."
            ));
        }
    };
    let Some(target_group) = instance.security_group_ids.first().cloned() else {
        return plan.refused(format!("{} has no security group.", instance.id));
    };
    let pci_on = ep.preserve_client_ip == Some(true);
    // Whether a network may hold the endpoint's address (unknown subnet:
    // assume it may).
    let holds_endpoint = |n: &Ipv4Net| f.endpoint_subnet_cidr.is_none_or(|s| overlaps(n, &s));
    let allow_text = join(allow.iter().map(ToString::to_string));

    let mut adds: Vec<(Rule, String, String)> = Vec::new();
    let mut late_adds: Vec<(Rule, String, String)> = Vec::new();
    let mut early_revokes: Vec<(&Rule, String)> = Vec::new();
    let mut late_revokes: Vec<(&Rule, String)> = Vec::new();
    let mut kept: Vec<Ipv4Net> = Vec::new();
    for r in
        rules_of(rules, &instance.security_group_ids).filter(|r| !r.egress && r.covers_tcp(port))
    {
        let why = match &r.peer {
            Peer::Group(g) if ep.security_group_ids.contains(g) => format!(
                "it allows the endpoint's security group {g}, which AWS matches for every client whether Preserve Client IP is on or off"
            ),
            Peer::Cidr(n) => match wider_than_expected(*n, allow, &f.vpc_cidrs) {
                Some(why) => format!("{n} {why}"),
                None => {
                    kept.push(*n);
                    continue;
                }
            },
            Peer::PrefixList(p) => {
                plan.unchecked.push(r.id.clone());
                plan.warnings.push(format!(
                    "{} allows prefix list {p}, whose entries eic-ssh cannot check against {allow_text}: review it (restrict leaves it alone).",
                    r.text()
                ));
                continue;
            }
            // Another group, IPv6: nothing that comes through the endpoint.
            _ => continue,
        };
        if !matches!(r.protocol.as_str(), "tcp" | "6") {
            plan.refusals.push(format!(
                "{} defeats the restriction ({why}), but it allows every port and protocol: revoking it would cut all of them off, so restrict will not. Replace it by hand with rules for what else must stay open, revoke it (aws ec2 revoke-security-group-ingress --group-id {} --security-group-rule-ids {}{aws}), and rerun.",
                r.text(),
                r.group_id,
                r.id
            ));
            continue;
        }
        // A tcp range: keep the rest of it open with the same peer, so that
        // only this port is taken away.
        let p = i32::from(port);
        for (from, to) in [(r.from_port, p - 1), (p + 1, r.to_port)] {
            if from <= to {
                let piece = Rule {
                    id: String::new(),
                    from_port: from,
                    to_port: to,
                    ..r.clone()
                };
                let what = format!("add inbound {} to {}", rule_words(&piece), piece.group_id);
                let why = format!(
                    "keeps the rest of {}'s range ({}) open when it is revoked below: only tcp/{port} is taken away",
                    r.id,
                    rule_words(r)
                );
                adds.push((piece, what, why));
            }
        }
        let inert = !pci_on && matches!(&r.peer, Peer::Cidr(n) if !holds_endpoint(n));
        if inert {
            early_revokes.push((r, why));
        } else {
            late_revokes.push((r, why));
        }
    }
    for (n, a) in allow.iter().enumerate() {
        // Covered by a rule that stays, or by another allowed network.
        let covered = kept.iter().any(|k| k.contains(a))
            || allow
                .iter()
                .enumerate()
                .any(|(m, b)| (b != a && b.contains(a)) || (b == a && m < n));
        if covered {
            continue;
        }
        let rule = Rule {
            id: String::new(),
            group_id: target_group.clone(),
            egress: false,
            protocol: "tcp".into(),
            from_port: i32::from(port),
            to_port: i32::from(port),
            peer: Peer::Cidr(*a),
            description: Some(DESCRIPTION.into()),
        };
        let what =
            format!("add inbound tcp/{port} from {a} to {target_group} (the instance's group)");
        let why = format!(
            "an allowed network: with Preserve Client IP on, the instance sees each client's own address, and this rule admits the ones in {a}"
        );
        if pci_on || !holds_endpoint(a) {
            adds.push((rule, what, why));
        } else {
            // With Preserve Client IP off it would admit the endpoint's
            // address, i.e. every client: only after it is on.
            late_adds.push((rule, what, why));
        }
    }
    let egress_ok = rules_of(rules, &ep.security_group_ids)
        .filter(|r| r.egress && r.covers_tcp(port))
        .any(|r| match &r.peer {
            Peer::Group(g) => instance.security_group_ids.contains(g),
            Peer::Cidr(n) => instance.private_ip.is_some_and(|ip| n.contains(&ip)),
            _ => false,
        });

    let mut changes: Vec<Change> = Vec::new();
    let step = |changes: &Vec<Change>| changes.len() + 1;
    for (rule, what, why) in adds {
        changes.push(authorize(step(&changes), rule, what, why, aws));
    }
    for (r, why) in early_revokes {
        let why = format!(
            "{why}; it matches nothing while Preserve Client IP is off, so it goes before that is turned on"
        );
        changes.push(revoke(step(&changes), r, why, aws));
    }
    if !pci_on {
        changes.push(Change {
            step: step(&changes),
            action: Action::PreserveClientIp,
            resource: ep.id.clone(),
            what: format!("turn on Preserve Client IP on {}", ep.id),
            why: format!(
                "with it off the instance sees the endpoint's address, never the client's, so no rule can tell clients apart. It applies to every tunnel through {}: an instance that admits the endpoint's address rather than its group or client networks will refuse tunnels until it admits client networks",
                ep.id
            ),
            command: format!(
                "aws ec2 modify-instance-connect-endpoint --instance-connect-endpoint-id {} --preserve-client-ip{aws}",
                ep.id
            ),
            undo: format!(
                "aws ec2 modify-instance-connect-endpoint --instance-connect-endpoint-id {} --no-preserve-client-ip{aws}",
                ep.id
            ),
            rule: None,
        });
    }
    for (rule, what, why) in late_adds {
        changes.push(authorize(step(&changes), rule, what, why, aws));
    }
    for (r, why) in late_revokes {
        changes.push(revoke(step(&changes), r, why, aws));
    }
    if !egress_ok {
        match ep.security_group_ids.first() {
            Some(eg) => {
                let rule = Rule {
                    id: String::new(),
                    group_id: eg.clone(),
                    egress: true,
                    protocol: "tcp".into(),
                    from_port: i32::from(port),
                    to_port: i32::from(port),
                    peer: Peer::Group(target_group.clone()),
                    description: Some(DESCRIPTION.into()),
                };
                let what = format!(
                    "add outbound tcp/{port} to security group {target_group} on {eg} (the endpoint's group)"
                );
                let why = format!(
                    "the endpoint needs outbound tcp/{port} to the instance, or every tunnel times out; it comes last, so the first path it opens is the restricted one"
                );
                changes.push(authorize(step(&changes), rule, what, why, aws));
            }
            None => plan.refusals.push(format!(
                "{} has no security group, so it cannot be allowed outbound tcp/{port} to the instance.",
                ep.id
            )),
        }
    }
    for c in &changes {
        if let Some(r) = &c.rule
            && !r.egress
            && !plan.touched_groups.contains(&r.group_id)
        {
            plan.touched_groups.push(r.group_id.clone());
        }
    }
    plan.end_state = end_state(f, &changes);
    plan.changes = changes;
    plan.status = if !plan.refusals.is_empty() {
        PlanStatus::Refused
    } else if plan.changes.is_empty() && !plan.unchecked.is_empty() {
        PlanStatus::Unconfirmed
    } else if plan.changes.is_empty() {
        PlanStatus::AlreadyRestricted
    } else {
        PlanStatus::Changes
    };
    plan
}

/// The facts as they will be after `changes`.
pub fn project(f: &Facts, changes: &[Change]) -> Facts {
    let mut g = f.clone();
    g.client = ClientAddr::Offline;
    for c in changes {
        match (c.action, &c.rule, g.rules.as_mut()) {
            (Action::AuthorizeIngress | Action::AuthorizeEgress, Some(r), Ok(rules)) => {
                rules.push(Rule {
                    id: format!("new rule #{}", c.step),
                    ..r.clone()
                });
            }
            (Action::RevokeIngress, Some(r), Ok(rules)) => rules.retain(|x| x.id != r.id),
            (Action::PreserveClientIp, _, _) => {
                if let Ok(eps) = g.endpoints.as_mut() {
                    for e in eps.iter_mut().filter(|e| e.id == c.resource) {
                        e.preserve_client_ip = Some(true);
                    }
                }
            }
            _ => {}
        }
    }
    g
}

/// Doctor's checks 3 to 7 on the projected state, but 6 (this machine's
/// address): the plan says that beside them, in `client_address`.
fn end_state(f: &Facts, changes: &[Change]) -> Vec<Check> {
    evaluate(&project(f, changes))
        .into_iter()
        .filter(|c| (3..=7).contains(&c.id) && c.id != 6 && c.status != Status::Skip)
        .collect()
}
