//! IPv6 and dual-stack endpoints: an IPv6-only instance (its sshd on ::1)
//! behind a dual-stack endpoint, an IPv4 instance through the dual-stack
//! name, and an endpoint that cannot reach the target's family.

use eic_sim::World;
use eic_sim::sshd::Sshd;

use crate::support::*;

const V6_INSTANCE: &str = "i-0abcdef0123456789";
const V6_IP: &str = "2600:1f18:1234:5601::10";

/// The demo world plus an IPv6-only instance in the same subnet; the
/// endpoint is dual-stack (and so without Preserve Client IP) when asked.
fn world(dual_stack: bool) -> World {
    let mut w = World::demo();
    let mut v6 = w.instances[0].clone();
    v6.id = V6_INSTANCE.into();
    v6.private_ip = None;
    v6.ipv6_address = Some(V6_IP.into());
    v6.ssh = None;
    w.instances.push(v6);
    if dual_stack {
        let e = &mut w.endpoints[0];
        e.ip_address_type = "dualstack".into();
        e.dualstack = true;
        e.preserve_client_ip = false;
    }
    w
}

fn tunnels(f: &Fixture) -> Vec<String> {
    f.sim
        .request_log()
        .into_iter()
        .filter(|e| e.op == "OpenTunnel")
        .map(|e| e.detail)
        .collect()
}

#[async_test]
async fn an_ipv6_only_instance_behind_a_dual_stack_endpoint() {
    let f = Fixture::with_world(world(true)).await;
    let _sshd6 = Sshd::start_on(&f.sim, V6_INSTANCE, "::1".parse().unwrap(), "")
        .await
        .expect("sshd starts on ::1");
    let target = format!("{}@{V6_INSTANCE}", f.user());
    let out = f.run(&["-v", &target, "--", "echo", "over v6"], b"").await;
    assert_eq!(out.stdout_str(), "over v6\n", "{}", out.stderr);
    out.assert_status(0);
    // The tunnel named the instance by its IPv6 address, through the
    // endpoint's dual-stack name.
    out.assert_stderr_contains(V6_IP);
    let dual = f.sim.eice_dualstack_dns();
    out.assert_stderr_contains(format!(" for {dual}:443"));
    let log = tunnels(&f);
    assert!(
        log.iter()
            .any(|d| d.contains(&format!("-> {V6_INSTANCE}:22 via {dual}"))),
        "{log:?}"
    );

    // --private-ip takes the IPv6 address: no EC2 lookup at all.
    let before = f.sim.request_log().len();
    let out = f
        .run(
            &[
                "--private-ip",
                V6_IP,
                "--eice-id",
                "eice-0123456789abcdef0",
                "--eice-dns",
                &dual,
                "--no-cache",
                &target,
                "--",
                "echo",
                "explicit",
            ],
            b"",
        )
        .await;
    assert_eq!(out.stdout_str(), "explicit\n", "{}", out.stderr);
    let ops: Vec<String> = f.sim.request_log()[before..]
        .iter()
        .map(|e| e.op.clone())
        .collect();
    assert!(!ops.iter().any(|o| o.starts_with("Describe")), "{ops:?}");
}

#[async_test]
async fn an_ipv4_instance_through_the_dual_stack_name() {
    let f = Fixture::with_world(world(true)).await;
    let out = f
        .run(&["-v", &f.target(), "--", "echo", "over v4"], b"")
        .await;
    assert_eq!(out.stdout_str(), "over v4\n", "{}", out.stderr);
    let dual = f.sim.eice_dualstack_dns();
    assert_ne!(dual, f.sim.eice_dns());
    let log = tunnels(&f);
    assert!(
        log.iter()
            .any(|d| d.contains(&format!("-> {INSTANCE}:22 via {dual}"))),
        "{log:?}"
    );
}

/// The dual-stack name's IPv6 address drops the SYN: after 250 ms the
/// IPv4 address is tried too and wins (Happy Eyeballs), well inside the
/// connect timeout, and the command runs.
#[async_test]
async fn a_silent_ipv6_path_to_a_dual_stack_endpoint_falls_back_to_ipv4() {
    let f = Fixture::with_world(world(true)).await;
    let hole = Blackhole::on("::1".parse().unwrap());
    // The simulator maps the dual-stack name to [::1]:P and 127.0.0.1:P;
    // its IPv6 address becomes the black hole.
    let env: Vec<_> = f.env();
    let connect_to = env
        .iter()
        .find(|(k, _)| k == "EIC_SSH_CONNECT_TO")
        .map(|(_, v)| v.to_string_lossy().into_owned())
        .unwrap();
    let dual = f.sim.eice_dualstack_dns();
    let pattern = format!("*.{}:443:[::1]:", dual.split_once('.').unwrap().1);
    let (head, tail) = connect_to.split_once(&pattern).unwrap();
    let port_end = tail.find(',').unwrap_or(tail.len());
    let remapped = format!("{head}{pattern}{}{}", hole.addr.port(), &tail[port_end..]);
    let mut cmd = f.command();
    cmd.env("EIC_SSH_CONNECT_TO", &remapped);
    let out = f
        .run_cmd(
            cmd,
            &[
                "-vv",
                "--connect-timeout",
                "5",
                &f.target(),
                "--",
                "echo",
                "fell back",
            ],
            b"",
        )
        .await;
    assert_eq!(out.stdout_str(), "fell back\n", "{}", out.stderr);
    out.assert_status(0);
    // Both families were tried, IPv6 first; IPv4 connected.
    let tried_v6 = out.stderr.find(&format!("[::1]:{}", hole.addr.port()));
    let connected_v4 = out
        .stderr
        .find("family=\"IPv4\"")
        .or_else(|| out.stderr.find("family=IPv4"));
    assert!(
        tried_v6.is_some() && connected_v4.is_some(),
        "{}",
        out.stderr
    );
    assert!(tried_v6 < connected_v4, "{}", out.stderr);
    assert!(
        tunnels(&f)
            .iter()
            .any(|d| d.contains(&format!("-> {INSTANCE}:22 via {dual}"))),
        "{:?}",
        tunnels(&f)
    );
}

#[async_test]
async fn an_ipv4_endpoint_cannot_reach_an_ipv6_only_instance() {
    let f = Fixture::with_world(world(false)).await;
    let target = format!("{}@{V6_INSTANCE}", f.user());
    let out = f.run(&[&target, "--", "true"], b"").await;
    out.assert_status(255);
    out.assert_stderr_contains(format!(
            "EC2 Instance Connect Endpoint eice-0123456789abcdef0 is ipv4 and cannot reach {V6_IP}, an IPv6 address"
        ));
    out.assert_stderr_contains("--ip-address-type dualstack");
    assert!(tunnels(&f).is_empty());
}

/// An IPv6-only instance behind a dual-stack endpoint sees the endpoint's
/// IPv6 address, from the endpoint subnet's IPv6 CIDR (DescribeSubnets):
/// doctor judges its IPv6 rules against that CIDR, as the simulator does
/// when it lets the tunnel through. A rule for the subnet's /64 passes
/// (and the connection works); a rule for another network and IPv4 rules
/// fail (and the connection times out), with a fix that admits the /64.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_judges_an_ipv6_only_instance_by_the_endpoint_subnets_ipv6_cidr() {
    use eic_sim::{DEMO_INSTANCE_SG, Peer, SgRule};
    const SUBNET_V6: &str = "2600:1f18:1234:5601::/64";
    let rules = |v6: &str| {
        vec![
            SgRule::tcp_in("sgr-0b000000000000022", 22, Peer::CidrV6(v6.into())),
            SgRule::tcp_in(
                "sgr-0b000000000000023",
                22,
                Peer::Cidr("10.0.0.0/16".into()),
            ),
        ]
    };
    let mut w = world(true);
    w.security_group_mut(DEMO_INSTANCE_SG).unwrap().rules = rules(SUBNET_V6);
    let f = Fixture::with_world(w).await;
    let _sshd6 = Sshd::start_on(&f.sim, V6_INSTANCE, "::1".parse().unwrap(), "")
        .await
        .expect("sshd starts on ::1");
    let target = format!("{}@{V6_INSTANCE}", f.user());

    let out = f
        .run(&["doctor", &target, "--offline", "--connect"], b"")
        .await;
    let text = out.stdout_str();
    assert_eq!(out.status, Some(0), "{text}\n{}", out.stderr);
    for needle in [
        "PASS 5. instance-ingress",
        &format!("reaches it from an address in the endpoint's subnet IPv6 CIDR {SUBNET_V6}"),
        "sgr-0b000000000000022 allows that",
        "PASS 8. connect",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
    let out = f.run(&[&target, "--", "echo", "in"], b"").await;
    assert_eq!(out.stdout_str(), "in\n", "{}", out.stderr);

    // Another IPv6 network: both say no.
    f.sim.set_world(|w| {
        w.security_group_mut(DEMO_INSTANCE_SG).unwrap().rules = rules("2001:db8::/32");
    });
    let out = f
        .run(&["doctor", &target, "--offline", "--connect"], b"")
        .await;
    let text = out.stdout_str();
    assert_eq!(out.status, Some(1), "{text}\n{}", out.stderr);
    for needle in [
        "FAIL 5. instance-ingress",
        "No inbound tcp/22 rule allows that: every tunnel will time out.",
        "Its IPv4 rules never match an IPv6 connection.",
        &format!("Ipv6Ranges=[{{CidrIpv6={SUBNET_V6}}}]"),
        "FAIL 8. connect",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
    let out = f.run(&[&target, "--", "echo", "in"], b"").await;
    out.assert_status(255);
    out.assert_stderr_contains("Connection to the instance timed out");
}
