//! Forwarding and NAT: the sysctl drop-in and the firewall, as one list of typed [`Rule`]s
//! rendered two ways, for `nft -f` ([`NftRuleset`]) and for `iptables-restore` /
//! `ip6tables-restore` ([`IptablesRuleset`]), so the two cannot drift apart.
//!
//! The firewall of a gateway:
//!
//! - **input** (policy drop): loopback, replies to the gateway's own connections, ICMP and
//!   ICMPv6 (ping, path MTU discovery, IPv6 neighbour discovery), DHCPv6 replies, the WireGuard
//!   UDP port and SSH (port 22 unless [`FirewallPlan::ssh_port`] says otherwise).
//! - **forward** (policy drop): replies; the private network and the VPN clients out of the
//!   egress side; VPN clients to the private network and back.
//! - **postrouting** (NAT): masquerade the private network and the tunnel out of the egress
//!   side, except traffic to the private network itself, so private machines see VPN clients
//!   by their tunnel addresses (their replies reach the gateway by their default route).
//!
//! # The egress side, without the NIC's name
//!
//! With `spec.gateway.egressInterface` set, "the egress side" is that interface
//! (`oifname "ens5"`, `-o ens5`). Unset (the default), it is **every interface but the
//! tunnel** (`oifname != "wg0"`, `! -o wg0`): what the private network or a VPN client sends
//! to an address outside the private network, and the routing table sends out of anything but
//! the tunnel, is forwarded and masqueraded to the address of the interface it leaves by. The
//! ruleset names no NIC, so it is the same file on every machine:
//!
//! - **NIC names differ** between clouds and instance types: Fedora CoreOS calls the first
//!   NIC `ens5` on AWS Nitro types (t3, t3a, m5), `enX0` on Xen types (t2), `ens3` with other
//!   drivers, and `eth0` nowhere. A rule naming `eth0` matches nothing there, silently.
//! - **One NIC** (the AWS NAT instance: the private subnets' default route points at the
//!   gateway's only ENI): traffic comes in and leaves by the same interface. It is not the
//!   tunnel, so it is forwarded and masqueraded; traffic to the private network is not.
//! - **Two NICs** (an uplink and a NIC in the private network): the routing table sends the
//!   internet's traffic out of the uplink, which is masqueraded; traffic to the private
//!   network leaves by the private NIC unmasqueraded, because its destination is in
//!   `privateCIDR`. A third network reached through another NIC is treated like the internet
//!   (forwarded, masqueraded); pin `egressInterface` to forbid that.
//! - **Nothing runs at boot to find the uplink.** The alternative, a oneshot that reads the
//!   default route's interface and writes it into the ruleset, must wait for DHCP (so the
//!   firewall would load after the network is up, leaving a window with forwarding on and no
//!   rules), picks one of two default routes by whichever NIC got its lease first, and goes
//!   stale when the route moves. The ruleset here loads before `network-pre.target`, does not
//!   change when routes do, and follows the routing table packet by packet.
//!
//! The price: with IPv6, router advertisements are accepted on every interface (the uplink's
//! name is not known: see [`SysctlDropIn`]).
//!
//! The nftables rendering owns one table, `inet frankenetes_gw`, and replaces it as a whole in
//! one transaction: applying it again is idempotent and leaves other tables alone. `iptables`
//! has no such namespacing: its rendering replaces the `filter` and `nat` tables entirely, and is
//! meant for a dedicated gateway host without nftables.

use std::fmt;

use frankenetes_spec::GatewaySpec;
use ipnet::IpNet;

/// The nftables table the gateway owns.
pub const NFT_TABLE: &str = "frankenetes_gw";

/// An address family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// IPv4.
    Ipv4,
    /// IPv6.
    Ipv6,
}

impl Family {
    fn of(net: &IpNet) -> Self {
        match net {
            IpNet::V4(_) => Family::Ipv4,
            IpNet::V6(_) => Family::Ipv6,
        }
    }
}

/// The chain a rule belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Chain {
    /// Packets to the gateway itself (filter).
    Input,
    /// Packets the gateway routes (filter).
    Forward,
    /// Packets leaving, after routing (nat).
    Postrouting,
}

impl Chain {
    const ALL: [Chain; 3] = [Chain::Input, Chain::Forward, Chain::Postrouting];

    fn nft_name(self) -> &'static str {
        match self {
            Chain::Input => "input",
            Chain::Forward => "forward",
            Chain::Postrouting => "postrouting",
        }
    }

    fn ipt_name(self) -> &'static str {
        match self {
            Chain::Input => "INPUT",
            Chain::Forward => "FORWARD",
            Chain::Postrouting => "POSTROUTING",
        }
    }

    /// nftables' base-chain declaration.
    fn nft_hook(self) -> &'static str {
        match self {
            Chain::Input => "type filter hook input priority filter; policy drop;",
            Chain::Forward => "type filter hook forward priority filter; policy drop;",
            Chain::Postrouting => "type nat hook postrouting priority srcnat; policy accept;",
        }
    }
}

/// A transport protocol to match.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Proto {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
    /// ICMP (IPv4).
    Icmp,
    /// ICMPv6.
    Icmpv6,
}

/// A connection-tracking state to match.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CtState {
    /// Replies and related packets (ICMP errors) of known connections.
    EstablishedRelated,
    /// Packets that belong to no valid connection.
    Invalid,
}

/// What to do with a matching packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// Let it through.
    Accept,
    /// Drop it.
    Drop,
    /// Rewrite its source to the outgoing interface's address.
    Masquerade,
}

/// One firewall rule; every field that is set must match.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Rule {
    /// The chain.
    pub chain: Chain,
    /// Incoming interface.
    pub iif: Option<String>,
    /// Outgoing interface.
    pub oif: Option<String>,
    /// Outgoing interface that must *not* match.
    pub oif_not: Option<String>,
    /// Source block.
    pub saddr: Option<IpNet>,
    /// Destination block.
    pub daddr: Option<IpNet>,
    /// Destination block that must *not* match.
    pub daddr_not: Option<IpNet>,
    /// Protocol.
    pub proto: Option<Proto>,
    /// Source port (with `proto` TCP or UDP).
    pub sport: Option<u16>,
    /// Destination port (with `proto` TCP or UDP).
    pub dport: Option<u16>,
    /// Connection-tracking state.
    pub ct: Option<CtState>,
    /// What to do.
    pub verdict: Verdict,
    /// Why the rule is there (rendered as a comment).
    pub comment: String,
}

impl Rule {
    fn new(chain: Chain, verdict: Verdict, comment: &str) -> Self {
        Self {
            chain,
            iif: None,
            oif: None,
            oif_not: None,
            saddr: None,
            daddr: None,
            daddr_not: None,
            proto: None,
            sport: None,
            dport: None,
            ct: None,
            verdict,
            comment: comment.to_owned(),
        }
    }

    /// The family the rule is limited to by its addresses or protocol; `None` for both.
    pub fn family(&self) -> Option<Family> {
        [self.saddr, self.daddr, self.daddr_not]
            .iter()
            .flatten()
            .map(Family::of)
            .next()
            .or(match self.proto {
                Some(Proto::Icmp) => Some(Family::Ipv4),
                Some(Proto::Icmpv6) => Some(Family::Ipv6),
                _ => None,
            })
    }
}

/// Everything the firewall and sysctl renderings need, taken from `spec.gateway`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FirewallPlan {
    /// The gateway's name (for comments).
    pub gateway: String,
    /// The interface facing the internet; `None`: every interface but the tunnel (see the
    /// [module docs](self)).
    pub egress_interface: Option<String>,
    /// The WireGuard interface.
    pub tunnel_interface: String,
    /// WireGuard's UDP port.
    pub listen_port: u16,
    /// The private network.
    pub private_cidr: IpNet,
    /// The tunnel block.
    pub tunnel_cidr: IpNet,
    /// SSH's TCP port, accepted on input; `None` closes it.
    pub ssh_port: Option<u16>,
}

impl FirewallPlan {
    /// The plan for a gateway spec, SSH on port 22.
    pub fn new(spec: &GatewaySpec) -> Self {
        Self {
            gateway: spec.name.as_str().to_owned(),
            egress_interface: spec.egress_interface.clone(),
            tunnel_interface: spec.tunnel.interface.clone(),
            listen_port: spec.tunnel.listen_port,
            private_cidr: spec.private_cidr.net(),
            tunnel_cidr: spec.tunnel.cidr.net(),
            ssh_port: Some(22),
        }
    }

    /// Whether either block is IPv6 (IPv6 forwarding is then turned on).
    pub fn uses_ipv6(&self) -> bool {
        matches!(self.private_cidr, IpNet::V6(_)) || matches!(self.tunnel_cidr, IpNet::V6(_))
    }

    /// Where the egress side is, in words (for comments): `ens5`, or `any interface but wg0`.
    pub fn egress_description(&self) -> String {
        match &self.egress_interface {
            Some(e) => e.clone(),
            None => format!("any interface but {}", self.tunnel_interface),
        }
    }

    /// Limits `rule` to packets leaving by the egress side.
    fn out_of_egress(&self, rule: &mut Rule) {
        match &self.egress_interface {
            Some(e) => rule.oif = Some(e.clone()),
            None => rule.oif_not = Some(self.tunnel_interface.clone()),
        }
    }

    /// The rules, in order.
    pub fn rules(&self) -> Vec<Rule> {
        use Chain::*;
        use Verdict::*;
        let tun = &self.tunnel_interface;
        let (private, tunnel) = (self.private_cidr, self.tunnel_cidr);
        let same_family = Family::of(&private) == Family::of(&tunnel);
        let mut r = Vec::new();

        let mut lo = Rule::new(Input, Accept, "loopback");
        lo.iif = Some("lo".into());
        r.push(lo);
        for chain in [Input, Forward] {
            let mut est = Rule::new(chain, Accept, "replies and related packets");
            est.ct = Some(CtState::EstablishedRelated);
            r.push(est);
            let mut inv = Rule::new(chain, Drop, "packets of no valid connection");
            inv.ct = Some(CtState::Invalid);
            r.push(inv);
        }
        let mut icmp = Rule::new(Input, Accept, "ICMP: ping, path MTU discovery");
        icmp.proto = Some(Proto::Icmp);
        r.push(icmp);
        let mut icmp6 = Rule::new(
            Input,
            Accept,
            "ICMPv6: neighbour discovery, ping, path MTU discovery",
        );
        icmp6.proto = Some(Proto::Icmpv6);
        r.push(icmp6);
        let mut dhcp6 = Rule::new(Input, Accept, "DHCPv6 replies");
        dhcp6.saddr = "fe80::/10".parse().ok();
        dhcp6.proto = Some(Proto::Udp);
        dhcp6.sport = Some(547);
        dhcp6.dport = Some(546);
        r.push(dhcp6);
        let mut wg = Rule::new(Input, Accept, "WireGuard");
        wg.proto = Some(Proto::Udp);
        wg.dport = Some(self.listen_port);
        r.push(wg);
        if let Some(port) = self.ssh_port {
            let mut ssh = Rule::new(Input, Accept, "SSH");
            ssh.proto = Some(Proto::Tcp);
            ssh.dport = Some(port);
            r.push(ssh);
        }

        let mut out = Rule::new(Forward, Accept, "private network to the internet");
        out.saddr = Some(private);
        self.out_of_egress(&mut out);
        r.push(out);
        let mut vpn_out = Rule::new(Forward, Accept, "VPN clients out of the egress interface");
        vpn_out.iif = Some(tun.clone());
        vpn_out.saddr = Some(tunnel);
        self.out_of_egress(&mut vpn_out);
        r.push(vpn_out);
        if same_family {
            let mut vpn_in = Rule::new(Forward, Accept, "VPN clients to the private network");
            vpn_in.iif = Some(tun.clone());
            vpn_in.saddr = Some(tunnel);
            vpn_in.daddr = Some(private);
            r.push(vpn_in);
            let mut back = Rule::new(Forward, Accept, "private network to VPN clients");
            back.saddr = Some(private);
            back.daddr = Some(tunnel);
            back.oif = Some(tun.clone());
            r.push(back);
        }

        for (src, what) in [(private, "private network"), (tunnel, "VPN clients")] {
            let mut m = Rule::new(
                Postrouting,
                Masquerade,
                &format!("{what} to the internet: rewrite the source to the egress address"),
            );
            self.out_of_egress(&mut m);
            m.saddr = Some(src);
            if Family::of(&src) == Family::of(&private) {
                m.daddr_not = Some(private);
            }
            r.push(m);
        }
        r
    }

    /// The nftables rendering.
    pub fn nftables(&self) -> NftRuleset {
        NftRuleset { plan: self.clone() }
    }

    /// The `iptables-restore` (IPv4) or `ip6tables-restore` (IPv6) rendering.
    pub fn iptables(&self, family: Family) -> IptablesRuleset {
        IptablesRuleset {
            plan: self.clone(),
            family,
        }
    }

    /// The sysctl drop-in.
    pub fn sysctl(&self) -> SysctlDropIn {
        SysctlDropIn { plan: self.clone() }
    }
}

fn nft_addr(keyword: &str, net: &IpNet, negate: bool) -> String {
    let fam = match Family::of(net) {
        Family::Ipv4 => "ip",
        Family::Ipv6 => "ip6",
    };
    let neg = if negate { "!= " } else { "" };
    format!("{fam} {keyword} {neg}{net}")
}

fn quote(s: &str) -> String {
    // Interface names are validated by the spec (letters, digits, '-', '_', '.'); comments are
    // ours. Escape quotes anyway.
    format!("\"{}\"", s.replace('"', "'"))
}

impl Rule {
    fn nft(&self) -> String {
        let mut p: Vec<String> = Vec::new();
        if let Some(i) = &self.iif {
            p.push(format!("iifname {}", quote(i)));
        }
        if let Some(o) = &self.oif {
            p.push(format!("oifname {}", quote(o)));
        }
        if let Some(o) = &self.oif_not {
            p.push(format!("oifname != {}", quote(o)));
        }
        if let Some(n) = &self.saddr {
            p.push(nft_addr("saddr", n, false));
        }
        if let Some(n) = &self.daddr {
            p.push(nft_addr("daddr", n, false));
        }
        if let Some(n) = &self.daddr_not {
            p.push(nft_addr("daddr", n, true));
        }
        match (self.proto, self.sport, self.dport) {
            (Some(proto @ (Proto::Tcp | Proto::Udp)), s, d) if s.is_some() || d.is_some() => {
                let name = if proto == Proto::Tcp { "tcp" } else { "udp" };
                if let Some(s) = s {
                    p.push(format!("{name} sport {s}"));
                }
                if let Some(d) = d {
                    p.push(format!("{name} dport {d}"));
                }
            }
            (Some(proto), _, _) => p.push(format!(
                "meta l4proto {}",
                match proto {
                    Proto::Tcp => "tcp",
                    Proto::Udp => "udp",
                    Proto::Icmp => "icmp",
                    Proto::Icmpv6 => "ipv6-icmp",
                }
            )),
            (None, _, _) => {}
        }
        match self.ct {
            Some(CtState::EstablishedRelated) => p.push("ct state established,related".into()),
            Some(CtState::Invalid) => p.push("ct state invalid".into()),
            None => {}
        }
        p.push(
            match self.verdict {
                Verdict::Accept => "accept",
                Verdict::Drop => "drop",
                Verdict::Masquerade => "masquerade",
            }
            .into(),
        );
        p.push(format!("comment {}", quote(&self.comment)));
        p.join(" ")
    }

    fn iptables(&self) -> String {
        let mut p: Vec<String> = vec![format!("-A {}", self.chain.ipt_name())];
        if let Some(i) = &self.iif {
            p.push(format!("-i {i}"));
        }
        if let Some(o) = &self.oif {
            p.push(format!("-o {o}"));
        }
        if let Some(o) = &self.oif_not {
            p.push(format!("! -o {o}"));
        }
        if let Some(n) = &self.saddr {
            p.push(format!("-s {n}"));
        }
        if let Some(n) = &self.daddr {
            p.push(format!("-d {n}"));
        }
        if let Some(n) = &self.daddr_not {
            p.push(format!("! -d {n}"));
        }
        if let Some(proto) = self.proto {
            p.push(
                match proto {
                    Proto::Tcp => "-p tcp",
                    Proto::Udp => "-p udp",
                    Proto::Icmp => "-p icmp",
                    Proto::Icmpv6 => "-p ipv6-icmp",
                }
                .into(),
            );
            if let Some(s) = self.sport {
                p.push(format!("--sport {s}"));
            }
            if let Some(d) = self.dport {
                p.push(format!("--dport {d}"));
            }
        }
        match self.ct {
            Some(CtState::EstablishedRelated) => {
                p.push("-m conntrack --ctstate ESTABLISHED,RELATED".into());
            }
            Some(CtState::Invalid) => p.push("-m conntrack --ctstate INVALID".into()),
            None => {}
        }
        p.push(
            match self.verdict {
                Verdict::Accept => "-j ACCEPT",
                Verdict::Drop => "-j DROP",
                Verdict::Masquerade => "-j MASQUERADE",
            }
            .into(),
        );
        p.join(" ")
    }
}

/// The nftables ruleset: `nft -f` it (again and again: it replaces its own table atomically).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NftRuleset {
    plan: FirewallPlan,
}

impl fmt::Display for NftRuleset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = &self.plan;
        writeln!(f, "#!/usr/sbin/nft -f")?;
        writeln!(
            f,
            "# Gateway {}: forward and masquerade {} and the WireGuard tunnel {} out of {}.",
            p.gateway,
            p.private_cidr,
            p.tunnel_cidr,
            p.egress_description()
        )?;
        writeln!(f, "# Generated by frankenetes: re-render, do not edit.")?;
        writeln!(
            f,
            "# Applying it again replaces table inet {NFT_TABLE} in one transaction; other tables are left alone."
        )?;
        writeln!(f, "# Remove it with: nft delete table inet {NFT_TABLE}")?;
        writeln!(f)?;
        // Declaring the table first makes the delete succeed when it does not exist yet.
        writeln!(f, "table inet {NFT_TABLE}")?;
        writeln!(f, "delete table inet {NFT_TABLE}")?;
        writeln!(f)?;
        writeln!(f, "table inet {NFT_TABLE} {{")?;
        let rules = p.rules();
        for (i, chain) in Chain::ALL.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            writeln!(f, "\tchain {} {{", chain.nft_name())?;
            writeln!(f, "\t\t{}", chain.nft_hook())?;
            for r in rules.iter().filter(|r| r.chain == *chain) {
                writeln!(f, "\t\t{}", r.nft())?;
            }
            writeln!(f, "\t}}")?;
        }
        writeln!(f, "}}")
    }
}

/// Built-in chains of an iptables table: name, policy, and the rules' chain.
type BuiltinChains = &'static [(&'static str, &'static str, Option<Chain>)];

/// An `iptables-restore` (or `ip6tables-restore`) file for one family: the same rules as
/// [`NftRuleset`]. It replaces the whole `filter` and `nat` tables of that family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IptablesRuleset {
    plan: FirewallPlan,
    family: Family,
}

impl fmt::Display for IptablesRuleset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = &self.plan;
        let tool = match self.family {
            Family::Ipv4 => "iptables-restore",
            Family::Ipv6 => "ip6tables-restore",
        };
        writeln!(
            f,
            "# Gateway {}: forward and masquerade {} and the WireGuard tunnel {} out of {}.",
            p.gateway,
            p.private_cidr,
            p.tunnel_cidr,
            p.egress_description()
        )?;
        writeln!(
            f,
            "# Generated by frankenetes: re-render, do not edit. Apply with `{tool} <this file>`:"
        )?;
        writeln!(
            f,
            "# it replaces the filter and nat tables, so applying it again is idempotent."
        )?;
        let rules: Vec<Rule> = p
            .rules()
            .into_iter()
            .filter(|r| r.family().is_none_or(|fam| fam == self.family))
            .collect();
        // Every built-in chain of the two tables, in iptables-save's order, with its policy and
        // the rules it gets.
        let tables: [(&str, BuiltinChains); 2] = [
            (
                "filter",
                &[
                    ("INPUT", "DROP", Some(Chain::Input)),
                    ("FORWARD", "DROP", Some(Chain::Forward)),
                    ("OUTPUT", "ACCEPT", None),
                ],
            ),
            (
                "nat",
                &[
                    ("PREROUTING", "ACCEPT", None),
                    ("INPUT", "ACCEPT", None),
                    ("OUTPUT", "ACCEPT", None),
                    ("POSTROUTING", "ACCEPT", Some(Chain::Postrouting)),
                ],
            ),
        ];
        for (table, chains) in tables {
            writeln!(f, "*{table}")?;
            for (name, policy, _) in chains {
                writeln!(f, ":{name} {policy} [0:0]")?;
            }
            for chain in chains.iter().filter_map(|(_, _, c)| *c) {
                for r in rules.iter().filter(|r| r.chain == chain) {
                    writeln!(f, "# {}", r.comment)?;
                    writeln!(f, "{}", r.iptables())?;
                }
            }
            writeln!(f, "COMMIT")?;
        }
        Ok(())
    }
}

/// The sysctl drop-in: IPv4 forwarding, and IPv6 forwarding when a block is IPv6 (with router
/// advertisements still accepted on the egress interface, so its default route survives; on
/// every interface, by the glob `net.ipv6.conf.*.accept_ra`, when the egress interface is not
/// named: systemd-sysctl and procps' `sysctl -p` expand it, `default` included, so interfaces
/// that appear later get it too).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SysctlDropIn {
    plan: FirewallPlan,
}

impl fmt::Display for SysctlDropIn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = &self.plan;
        writeln!(
            f,
            "# Gateway {}: route between the private network, the WireGuard tunnel and the internet.",
            p.gateway
        )?;
        writeln!(f, "# Generated by frankenetes: re-render, do not edit.")?;
        writeln!(f, "net.ipv4.ip_forward = 1")?;
        if p.uses_ipv6() {
            writeln!(f, "net.ipv6.conf.all.forwarding = 1")?;
            // Forwarding turns off router advertisements unless accept_ra is 2. Interface names
            // with dots need the slash form of the key.
            match &p.egress_interface {
                Some(e) if e.contains('.') => writeln!(f, "net/ipv6/conf/{e}/accept_ra = 2")?,
                Some(e) => writeln!(f, "net.ipv6.conf.{e}.accept_ra = 2")?,
                None => {
                    writeln!(
                        f,
                        "# The uplink is not named (spec.gateway.egressInterface): every interface."
                    )?;
                    writeln!(f, "net.ipv6.conf.*.accept_ra = 2")?;
                }
            }
        }
        Ok(())
    }
}
