//! The checks that need both the instance and the endpoint: checks 3 to 7
//! on [`PathFacts`].

use super::*;

impl PathFacts<'_> {
    pub(in crate::access) fn port(&self) -> u16 {
        self.f.port
    }

    pub(in crate::access) fn pci(&self) -> bool {
        self.ep.preserve_client_ip == Some(true)
    }

    pub(in crate::access) fn first_instance_group(&self) -> &str {
        self.instance
            .security_group_ids
            .first()
            .map_or("<instance-sg>", String::as_str)
    }

    pub(in crate::access) fn first_endpoint_group(&self) -> &str {
        self.ep
            .security_group_ids
            .first()
            .map_or("<endpoint-sg>", String::as_str)
    }

    pub(in crate::access) fn endpoint_on(&self) -> String {
        format!(
            "aws ec2 modify-instance-connect-endpoint --instance-connect-endpoint-id {} --preserve-client-ip{}",
            self.ep.id, self.f.aws_args
        )
    }

    pub(in crate::access) fn iam_alternative(&self) -> String {
        format!(
            "or restrict by IAM instead: a Deny on ec2-instance-connect:OpenTunnel for arn:aws:ec2:*:*:instance-connect-endpoint/{} with a NotIpAddress condition on aws:SourceIp",
            self.ep.id
        )
    }

    pub(in crate::access) fn endpoint_egress(&self) -> Check {
        let port = self.port();
        let c = |status, msg: String| Check::new(3, "endpoint-egress", status, msg);
        let out: Vec<&Rule> = rules_of(self.rules, &self.ep.security_group_ids)
            .filter(|r| r.egress && r.covers_tcp(port))
            .collect();
        let ip = self.instance.target_ip();
        let v6 = self
            .instance
            .ipv6
            .filter(|_| self.instance.private_ip.is_none());
        let reaches = out.iter().find(|r| match &r.peer {
            Peer::Group(g) => self.instance.security_group_ids.contains(g),
            Peer::Cidr(n) => self.instance.private_ip.is_some_and(|ip| n.contains(&ip)),
            // An IPv6-only instance is reached at its IPv6 address.
            Peer::CidrV6(n) => v6.is_some_and(|ip| {
                n.parse::<ipnet::Ipv6Net>()
                    .is_ok_and(|net| net.contains(&ip))
            }),
            _ => false,
        });
        if let Some(r) = reaches {
            return c(
                Status::Pass,
                format!(
                    "The endpoint may open tcp/{port} to {}: {} allows {}.",
                    self.instance.id,
                    r.id,
                    r.peer_text()
                ),
            );
        }
        let details: Vec<String> = out.iter().map(|r| r.text()).collect();
        if let Some(r) = out.iter().find(|r| matches!(r.peer, Peer::PrefixList(_))) {
            return c(
                Status::Warn,
                format!(
                    "Outbound tcp/{port} from the endpoint is allowed only to {} ({}), whose entries were not checked against {}.",
                    r.peer_text(),
                    r.id,
                    ip.map_or_else(|| "the instance".to_owned(), |ip| ip.to_string())
                ),
            )
            .details(details);
        }
        c(
            Status::Fail,
            format!(
                "The endpoint's security groups ({}) allow no outbound tcp/{port} to {} (its groups {} or its address {}): every tunnel will time out.",
                self.ep.security_group_ids.join(", "),
                self.instance.id,
                self.instance.security_group_ids.join(", "),
                ip.map_or_else(|| "unknown".to_owned(), |ip| ip.to_string())
            ),
        )
        .fix(format!(
            "aws ec2 authorize-security-group-egress --group-id {} --ip-permissions 'IpProtocol=tcp,FromPort={port},ToPort={port},UserIdGroupPairs=[{{GroupId={}}}]'{}",
            self.first_endpoint_group(),
            self.first_instance_group(),
            self.f.aws_args
        ))
        .details(details)
    }

    pub(in crate::access) fn endpoint_ingress(&self) -> Check {
        let c = |status, msg: String| Check::new(4, "endpoint-ingress", status, msg);
        let inbound: Vec<&Rule> = rules_of(self.rules, &self.ep.security_group_ids)
            .filter(|r| !r.egress)
            .collect();
        if inbound.is_empty() {
            return c(
                Status::Pass,
                "The endpoint's security groups have no inbound rules, and need none.".into(),
            );
        }
        let shared: Vec<&String> = self
            .ep
            .security_group_ids
            .iter()
            .filter(|g| self.instance.security_group_ids.contains(g))
            .collect();
        let mut details: Vec<String> = inbound.iter().map(|r| r.text()).collect();
        if !shared.is_empty() {
            details.push(format!(
                "{} is also on the instance, where its inbound rules do apply",
                join(shared.iter().map(|g| g.to_string()))
            ));
        }
        c(
            Status::Warn,
            format!(
                "The endpoint's security groups have {} inbound rule(s) ({}): they restrict nothing, because clients reach the endpoint through the service's API, not its network interface.",
                inbound.len(),
                join(inbound.iter().map(|r| r.id.clone()))
            ),
        )
        .details(details)
    }

    pub(in crate::access) fn instance_ingress(&self) -> Check {
        let port = self.port();
        if let Some(std::net::IpAddr::V6(ip)) = self.instance.target_ip() {
            return self.ingress_v6_only(port, ip);
        }
        let admits = inbound(
            self.rules,
            &self.instance.security_group_ids,
            &self.ep.security_group_ids,
            port,
        );
        let mut details: Vec<String> = vec![format!(
            "combined groups of {}: {}",
            self.instance.id,
            self.instance.security_group_ids.join(", ")
        )];
        let subnet = self.f.endpoint_subnet_cidr;
        details.extend(admits.iter().map(|a| match a {
            Admits::EveryClient(r) => format!("{} (the endpoint's group: every client)", r.text()),
            Admits::Cidr(r, n) if !self.pci() && !subnet.is_some_and(|s| n.contains(&s)) => {
                format!("{} (never matches with Preserve Client IP off)", r.text())
            }
            Admits::Cidr(r, _) | Admits::PrefixList(r) => r.text(),
            Admits::Nothing(r) => format!(
                "{} (matches nothing that comes through the endpoint)",
                r.text()
            ),
        }));
        if self.pci() {
            self.ingress_preserved(port, &admits, details)
        } else {
            self.ingress_not_preserved(port, &admits, details)
        }
    }

    /// An IPv6-only instance: a dual-stack or IPv6 endpoint reaches it from
    /// its own IPv6 address, in the endpoint subnet's IPv6 CIDR (Preserve
    /// Client IP is IPv4-only, so never the client's), and IPv4 rules never
    /// match.
    pub(in crate::access) fn ingress_v6_only(&self, port: u16, ip: std::net::Ipv6Addr) -> Check {
        let c = |status, msg: String| Check::new(5, "instance-ingress", status, msg);
        let subnets = &self.f.endpoint_subnet_cidrs_v6;
        let v6 = |r: &Rule| match &r.peer {
            Peer::CidrV6(c) => c.parse::<ipnet::Ipv6Net>().ok().map(|n| n.trunc()),
            _ => None,
        };
        let rules: Vec<&Rule> = rules_of(self.rules, &self.instance.security_group_ids)
            .filter(|r| !r.egress && r.covers_tcp(port))
            .collect();
        let every_client =
            |r: &Rule| matches!(&r.peer, Peer::Group(g) if self.ep.security_group_ids.contains(g));
        let mut details: Vec<String> = vec![format!(
            "combined groups of {}: {}",
            self.instance.id,
            self.instance.security_group_ids.join(", ")
        )];
        details.extend(rules.iter().map(|r| match &r.peer {
            _ if every_client(r) => format!("{} (the endpoint's group: every client)", r.text()),
            Peer::Cidr(_) => format!(
                "{} (IPv4: never matches, the instance is reached over IPv6)",
                r.text()
            ),
            Peer::CidrV6(_) | Peer::PrefixList(_) => r.text(),
            _ => format!(
                "{} (matches nothing that comes through the endpoint)",
                r.text()
            ),
        }));
        let where_ = match subnets.as_slice() {
            [] => "the endpoint's IPv6 address (its subnet's IPv6 CIDR is unknown)".to_owned(),
            nets => format!(
                "an address in the endpoint's subnet IPv6 CIDR {}",
                join(nets.iter().map(ToString::to_string))
            ),
        };
        let admitting = rules.iter().find(|r| {
            every_client(r)
                || v6(r)
                    .is_some_and(|n| !subnets.is_empty() && subnets.iter().all(|s| n.contains(s)))
        });
        let partial = rules.iter().find(|r| {
            v6(r).is_some_and(|n| subnets.iter().any(|s| s.contains(&n) || n.contains(s)))
        });
        let head = format!(
            "{} is IPv6-only ({ip}), so {} reaches it from {where_}, never from the client's address (Preserve Client IP is IPv4-only)",
            self.instance.id, self.ep.id
        );
        if let Some(r) = admitting {
            let head = format!(
                "{head}. {} allows that: every client allowed to open a tunnel gets in, and security groups cannot restrict by client IP here.",
                r.id
            );
            details.push(self.iam_alternative());
            if !self.f.expect.is_empty() {
                return c(
                    Status::Fail,
                    format!(
                        "{head} The restriction to {} does not hold.",
                        join(self.f.expect.iter().map(ToString::to_string))
                    ),
                )
                .fix(format!(
                    "restrict by IAM: a Deny on ec2-instance-connect:OpenTunnel for arn:aws:ec2:*:*:instance-connect-endpoint/{} with a NotIpAddress condition on aws:SourceIp",
                    self.ep.id
                ))
                .details(details);
            }
            return c(Status::Pass, head).details(details);
        }
        if let Some(r) = partial {
            return c(
                Status::Warn,
                format!(
                    "{head}; {} allows only part of that ({}), which may miss the endpoint's address.",
                    r.id,
                    r.peer_text()
                ),
            )
            .details(details);
        }
        let mut msg =
            format!("{head}. No inbound tcp/{port} rule allows that: every tunnel will time out.");
        if rules.iter().any(|r| matches!(r.peer, Peer::Cidr(_))) {
            msg.push_str(" Its IPv4 rules never match an IPv6 connection.");
        }
        let fix = match subnets.first() {
            Some(net) => format!(
                "aws ec2 authorize-security-group-ingress --group-id {} --ip-permissions 'IpProtocol=tcp,FromPort={port},ToPort={port},Ipv6Ranges=[{{CidrIpv6={net}}}]'{}",
                self.first_instance_group(),
                self.f.aws_args
            ),
            None => format!(
                "aws ec2 authorize-security-group-ingress --group-id {} --protocol tcp --port {port} --source-group {}{}",
                self.first_instance_group(),
                self.first_endpoint_group(),
                self.f.aws_args
            ),
        };
        c(Status::Fail, msg).fix(fix).details(details)
    }

    /// Preserve Client IP off: the instance sees the endpoint's address.
    pub(in crate::access) fn ingress_not_preserved(
        &self,
        port: u16,
        admits: &[Admits],
        mut details: Vec<String>,
    ) -> Check {
        let c = |status, msg: String| Check::new(5, "instance-ingress", status, msg);
        let subnet = self.f.endpoint_subnet_cidr;
        let where_ = match subnet {
            Some(n) => format!("an address in the endpoint's subnet {n}"),
            None => "the endpoint's address".to_owned(),
        };
        let admitting = admits.iter().find_map(|a| match a {
            Admits::EveryClient(r) => Some(*r),
            Admits::Cidr(r, n) if subnet.is_some_and(|s| n.contains(&s)) => Some(*r),
            _ => None,
        });
        let partial = admits.iter().find_map(|a| match a {
            Admits::Cidr(r, n) if subnet.is_some_and(|s| s.contains(n)) => Some(*r),
            _ => None,
        });
        let ways_out = vec![
            format!("turn Preserve Client IP on: {}", self.endpoint_on()),
            self.iam_alternative(),
        ];
        if let Some(r) = admitting {
            let head = format!(
                "Preserve Client IP is off, so the instance sees {where_}, which {} allows: every client allowed to open a tunnel gets in, and security groups cannot restrict by client IP in this mode.",
                r.id
            );
            details.extend(ways_out);
            if !self.f.expect.is_empty() {
                return c(
                    Status::Fail,
                    format!(
                        "{head} The restriction to {} does not hold.",
                        join(self.f.expect.iter().map(ToString::to_string))
                    ),
                )
                .fix(self.endpoint_on())
                .details(details);
            }
            return c(Status::Pass, head).details(details);
        }
        if let Some(r) = partial {
            return c(
                Status::Warn,
                format!(
                    "Preserve Client IP is off, so the instance sees {where_}; {} allows only part of that subnet ({}), which may miss the endpoint's address.",
                    r.id,
                    r.peer_text()
                ),
            )
            .details(details);
        }
        let client_rules: Vec<String> = admits
            .iter()
            .filter_map(|a| match a {
                Admits::Cidr(r, n) => Some(format!("{} ({n})", r.id)),
                _ => None,
            })
            .collect();
        let mut msg = format!(
            "Preserve Client IP is off, so the instance sees {where_}, and no inbound tcp/{port} rule allows it: every tunnel will time out."
        );
        let allow_endpoint = format!(
            "aws ec2 authorize-security-group-ingress --group-id {} --protocol tcp --port {port} --source-group {}{}",
            self.first_instance_group(),
            self.first_endpoint_group(),
            self.f.aws_args
        );
        let fix = if client_rules.is_empty() {
            allow_endpoint
        } else {
            msg.push_str(&format!(
                " The client CIDR rule(s) {} never match in this mode: to restrict by client IP, turn Preserve Client IP on.",
                client_rules.join(", ")
            ));
            details.push(self.iam_alternative());
            self.endpoint_on()
        };
        c(Status::Fail, msg).fix(fix).details(details)
    }

    /// Preserve Client IP on: the instance sees the client's own address.
    pub(in crate::access) fn ingress_preserved(
        &self,
        port: u16,
        admits: &[Admits],
        details: Vec<String>,
    ) -> Check {
        let c = |status, msg: String| Check::new(5, "instance-ingress", status, msg);
        let allowed: Vec<String> = admits
            .iter()
            .filter_map(|a| match a {
                Admits::EveryClient(r) => Some(format!("every client ({})", r.id)),
                Admits::Cidr(r, n) => Some(format!("{n} ({})", r.id)),
                Admits::PrefixList(r) => Some(format!("{} ({})", r.peer_text(), r.id)),
                Admits::Nothing(_) => None,
            })
            .collect();
        if allowed.is_empty() {
            let cidr = self
                .f
                .expect
                .first()
                .map(ToString::to_string)
                .or_else(|| self.f.client.ip().map(|ip| format!("{ip}/32")))
                .unwrap_or_else(|| "<client-cidr>".to_owned());
            return c(
                Status::Fail,
                format!(
                    "Preserve Client IP is on, and no inbound tcp/{port} rule on {} allows any client: every tunnel will time out.",
                    self.instance.security_group_ids.join(", ")
                ),
            )
            .fix(format!(
                "aws ec2 authorize-security-group-ingress --group-id {} --protocol tcp --port {port} --cidr {cidr}{}",
                self.first_instance_group(),
                self.f.aws_args
            ))
            .details(details);
        }
        let head = format!(
            "Preserve Client IP is on; the instance admits tcp/{port} from {}.",
            allowed.join(", ")
        );
        if self.f.expect.is_empty() {
            return c(Status::Pass, head).details(details);
        }
        let expect = join(self.f.expect.iter().map(ToString::to_string));
        let offending: Vec<(&Rule, String)> = admits
            .iter()
            .filter_map(|a| match a {
                Admits::EveryClient(r) => Some((
                    *r,
                    format!(
                        "allows the endpoint's security group {}, which AWS matches for every client in both modes",
                        r.peer_text().trim_start_matches("security group ")
                    ),
                )),
                Admits::Cidr(r, n) => wider_than_expected(*n, &self.f.expect, &self.f.vpc_cidrs)
                    .map(|why| (*r, format!("{n} {why}"))),
                _ => None,
            })
            .collect();
        if !offending.is_empty() {
            let named = offending
                .iter()
                .map(|(r, why)| format!("{} {why}", r.id))
                .collect::<Vec<_>>()
                .join("; ");
            let fix = offending
                .iter()
                .map(|(r, _)| {
                    format!(
                        "aws ec2 revoke-security-group-ingress --group-id {} --security-group-rule-ids {}{}",
                        r.group_id, r.id, self.f.aws_args
                    )
                })
                .collect::<Vec<_>>()
                .join("\n");
            return c(
                Status::Fail,
                format!(
                    "{head} The restriction to {expect} is defeated by {} rule(s): {named}.",
                    offending.len()
                ),
            )
            .fix(fix)
            .details(details);
        }
        if let Some(Admits::PrefixList(r)) =
            admits.iter().find(|a| matches!(a, Admits::PrefixList(_)))
        {
            return c(
                Status::Warn,
                format!(
                    "{head} {} allows {}, whose entries were not checked against {expect}.",
                    r.id,
                    r.peer_text()
                ),
            )
            .details(details);
        }
        c(
            Status::Pass,
            format!("{head} Every allowed client source is inside {expect}."),
        )
        .details(details)
    }

    pub(in crate::access) fn client_address(&self) -> Check {
        let port = self.port();
        let c = |status, msg: String| Check::new(6, "client-address", status, msg);
        if !self.pci() {
            return c(
                Status::Skip,
                "Preserve Client IP is off: the instance sees the endpoint's address, not this machine's (check 5 decides).".into(),
            );
        }
        let (ip, how) = match &self.f.client {
            ClientAddr::Given(ip) => (*ip, "given"),
            ClientAddr::Discovered(ip) => (*ip, "discovered"),
            ClientAddr::Offline => {
                return c(
                    Status::Skip,
                    "Offline: pass --client-ip to check this machine's public address.".into(),
                );
            }
            ClientAddr::Failed(why) => {
                return c(
                    Status::Warn,
                    format!(
                        "Could not discover this machine's public address ({why}); pass --client-ip to check it."
                    ),
                );
            }
        };
        let admits = inbound(
            self.rules,
            &self.instance.security_group_ids,
            &self.ep.security_group_ids,
            port,
        );
        if let Some(r) = admitting_rule(
            self.rules,
            &self.instance.security_group_ids,
            &self.ep.security_group_ids,
            port,
            ip,
        ) {
            return c(
                Status::Pass,
                format!(
                    "This machine ({ip}, {how}) is allowed: {} allows {}.",
                    r.id,
                    r.peer_text()
                ),
            );
        }
        if let Some(Admits::PrefixList(r)) =
            admits.iter().find(|a| matches!(a, Admits::PrefixList(_)))
        {
            return c(
                Status::Warn,
                format!(
                    "This machine ({ip}, {how}) is allowed only if {} ({}) contains it; its entries were not checked.",
                    r.peer_text(),
                    r.id
                ),
            );
        }
        let allowed = join(admits.iter().filter_map(|a| match a {
            Admits::Cidr(_, n) => Some(n.to_string()),
            _ => None,
        }));
        let allowed = if allowed.is_empty() {
            "nothing".to_owned()
        } else {
            allowed
        };
        let msg = format!(
            "This machine ({ip}, {how}) will be refused: with Preserve Client IP on the instance sees that address, and its inbound tcp/{port} rules allow only {allowed}. The tunnel opens, then closes when the connection to the instance times out."
        );
        let outside_expected =
            !self.f.expect.is_empty() && !self.f.expect.iter().any(|n| n.contains(&ip));
        let fix = if outside_expected {
            format!(
                "connect from a network inside {} (this machine is outside the intended restriction; widening the rule would defeat it)",
                join(self.f.expect.iter().map(ToString::to_string))
            )
        } else {
            format!(
                "aws ec2 authorize-security-group-ingress --group-id {} --protocol tcp --port {port} --cidr {ip}/32{}",
                self.first_instance_group(),
                self.f.aws_args
            )
        };
        c(Status::Fail, msg).fix(fix)
    }
}
