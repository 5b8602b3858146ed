//! The AWS backend and the lab against a real `moto_server` on 127.0.0.1 (one per test, stopped
//! by PID when the test ends, also on failure).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)] // tests

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{IpAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_ec2::types::Filter;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use frankenetes_cloud_aws::{
    Ec2Backend, Event, Lab, LabPayloads, MachineDefaults, Timing, static_sdk_config, userdata,
};
use frankenetes_compute::{ClusterTag, MachineSpec, UnitSpec};
use frankenetes_spec::{ClusterSpec, NodeName};

const REGION: &str = "eu-west-3";
/// Any id: moto accepts unknown AMIs unless told otherwise (no Fedora CoreOS AMI is bundled).
const AMI: &str = "ami-0fc0ffee0fc0ffee0";

/// A `moto_server` on a free loopback port, killed by PID on drop.
struct Moto {
    child: Child,
    port: u16,
}

fn moto_binary() -> PathBuf {
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    let cached = home.join(".cache/frankenetes/py/bin/moto_server");
    if cached.exists() {
        return cached;
    }
    for dir in std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()) {
        let p = dir.join("moto_server");
        if p.exists() {
            return p;
        }
    }
    panic!(
        "moto_server not found in ~/.cache/frankenetes/py/bin or PATH: run scripts/install-deps.sh"
    );
}

impl Moto {
    fn start() -> Moto {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        // The recorder writes its log to a file: keep it out of the source tree.
        let dir = std::env::temp_dir().join(format!("frankenetes-moto-{port}"));
        std::fs::create_dir_all(&dir).unwrap();
        let child = Command::new(moto_binary())
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .current_dir(&dir)
            .env("MOTO_RECORDER_FILEPATH", dir.join("recording"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto_server");
        let moto = Moto { child, port };
        let start = Instant::now();
        loop {
            if moto
                .http("GET", "/moto-api/")
                .map(|(s, _)| s == 200)
                .unwrap_or(false)
            {
                return moto;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "moto_server did not answer on port {port} within 60 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn sdk(&self) -> aws_config::SdkConfig {
        static_sdk_config(&self.url(), REGION, "testing", "testing")
    }

    /// A minimal HTTP/1.1 request to moto's control API.
    fn http(&self, method: &str, path: &str) -> std::io::Result<(u16, Vec<u8>)> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port))?;
        s.set_read_timeout(Some(Duration::from_secs(30)))?;
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.port
        )?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf)?;
        let split = buf
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or(buf.len());
        let head = String::from_utf8_lossy(&buf[..split]).to_string();
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let mut body = buf.get(split + 4..).unwrap_or_default().to_vec();
        if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            let mut out = Vec::new();
            let mut rest = &body[..];
            while let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") {
                let size = usize::from_str_radix(String::from_utf8_lossy(&rest[..eol]).trim(), 16)
                    .unwrap_or(0);
                if size == 0 {
                    break;
                }
                out.extend_from_slice(&rest[eol + 2..eol + 2 + size]);
                rest = &rest[eol + 2 + size + 2..];
            }
            body = out;
        }
        Ok((status, body))
    }

    /// Starts moto's request recorder (every API request from now on is logged).
    fn record(&self) {
        let (s, _) = self
            .http("POST", "/moto-api/recorder/reset-recording")
            .unwrap();
        assert_eq!(s, 200);
        let (s, _) = self
            .http("POST", "/moto-api/recorder/start-recording")
            .unwrap();
        assert_eq!(s, 200);
    }

    /// The API actions recorded since [`Moto::record`], in order.
    fn recorded_actions(&self) -> Vec<String> {
        let (s, body) = self
            .http("GET", "/moto-api/recorder/download-recording")
            .unwrap();
        assert_eq!(s, 200);
        let mut actions = Vec::new();
        for line in String::from_utf8_lossy(&body)
            .lines()
            .filter(|l| !l.trim().is_empty())
        {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let url = v["url"].as_str().unwrap_or_default().to_owned();
            let mut body = v["body"].as_str().unwrap_or_default().to_owned();
            if v["body_encoded"].as_bool() == Some(true) {
                body = String::from_utf8_lossy(&STANDARD.decode(&body).unwrap_or_default())
                    .to_string();
            }
            let query = url
                .split_once('?')
                .map(|(_, q)| q.to_owned())
                .unwrap_or_default();
            let action = [query.as_str(), body.as_str()]
                .iter()
                .flat_map(|s| s.split('&'))
                .find_map(|kv| kv.strip_prefix("Action="))
                .map(str::to_owned);
            if let Some(a) = action {
                actions.push(a);
            } else if !url.contains("/moto-api/") {
                actions.push(format!(
                    "{} {url}",
                    v["method"].as_str().unwrap_or_default()
                ));
            }
        }
        actions
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(
            std::env::temp_dir().join(format!("frankenetes-moto-{}", self.port)),
        );
    }
}

fn fast() -> Timing {
    Timing::new(Duration::from_millis(50), Duration::from_secs(30))
}

/// Query-API actions by name; S3's REST calls (recorded as `METHOD url`) by method.
fn is_read(action: &str) -> bool {
    action.starts_with("Describe")
        || action.starts_with("Get")
        || action.starts_with("List")
        || action.starts_with("GET ")
        || action.starts_with("HEAD ")
}

/// The write-up's lab: VPC 10.10.16.0/20, nodes .11–.13, gateway 10.10.31.10, NLB .10.
fn lab_spec(name: &str) -> ClusterSpec {
    let yaml = format!(
        r#"
apiVersion: frankenetes.dev/v1alpha1
kind: Cluster
metadata: {{ name: {name} }}
spec:
  kubernetesVersion: v1.35.0
  controlPlaneEndpoint: 10.10.16.10:6443
  controlPlane:
    - {{ name: control-01, ip: 10.10.16.11 }}
    - {{ name: control-02, ip: 10.10.16.12 }}
    - {{ name: control-03, ip: 10.10.16.13 }}
  gateway: {{ ip: 10.10.31.10, privateCIDR: 10.10.16.0/20, tunnel: {{ cidr: 10.200.0.0/24 }} }}
  backend:
    aws: {{ region: {REGION}, availabilityZone: {REGION}a, instanceType: t3a.nano, gatewayInstanceType: t3a.nano, ami: {AMI} }}
"#
    );
    ClusterSpec::from_yaml(&yaml).unwrap().spec
}

fn ignition(tag: &str, files: usize) -> Vec<u8> {
    let mut s = format!(
        r#"{{"ignition":{{"version":"3.4.0"}},"storage":{{"files":[{{"path":"/etc/{tag}","mode":420}}"#
    );
    for i in 0..files {
        s.push_str(&format!(r#",{{"path":"/etc/kubernetes/manifests/file-{i}.yaml","mode":420,"contents":{{"source":"data:,{tag}"}}}}"#));
    }
    s.push_str("]}}");
    s.into_bytes()
}

/// Payloads: control-02's is over EC2's 16 KiB limit (it must go in as the gzip stub).
fn payloads() -> LabPayloads {
    let mut nodes = BTreeMap::new();
    nodes.insert(
        NodeName::try_from("control-01").unwrap(),
        ignition("control-01", 3),
    );
    nodes.insert(
        NodeName::try_from("control-02").unwrap(),
        ignition("control-02", 300),
    );
    nodes.insert(
        NodeName::try_from("control-03").unwrap(),
        ignition("control-03", 3),
    );
    LabPayloads::new(ignition("gateway", 2), nodes)
}

fn tag(cluster: &str) -> Filter {
    Filter::builder()
        .name(format!("tag:{}", ClusterTag::KEY))
        .values(cluster)
        .build()
}

fn by_role(tags: &[aws_sdk_ec2::types::Tag]) -> String {
    tags.iter()
        .find(|t| t.key() == Some("frankenetes.dev/role"))
        .and_then(|t| t.value())
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ec2_backend_passes_the_compute_conformance_suite() {
    let moto = Moto::start();
    let backend = Ec2Backend::new(&moto.sdk())
        .with_defaults({
            let mut d = MachineDefaults::default();
            d.image = Some(AMI.into());
            d
        })
        .with_timing(fast());
    let mut m = MachineSpec::new("t3a.nano");
    m.user_data = ignition("conformance", 1);
    frankenetes_compute::testing::lifecycle(
        &backend,
        UnitSpec::machine("worker-01", ClusterTag::new("conformance"), m),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lab_up_builds_everything_up_again_creates_nothing_down_leaves_nothing() {
    let moto = Moto::start();
    let sdk = moto.sdk();
    let ec2 = aws_sdk_ec2::Client::new(&sdk);
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&sdk);
    let spec = lab_spec("kubelius");
    let payloads = payloads();
    let lab = Lab::new(&sdk, &spec, payloads.clone())
        .unwrap()
        .with_timing(fast());
    let events = Arc::new(std::sync::Mutex::new(Vec::new()));
    let ev = events.clone();
    let on = move |e: &Event| ev.lock().unwrap().push(e.to_string());

    let t = Instant::now();
    let report = lab.up(&on).await.unwrap();
    eprintln!(
        "first up: {:?}, {} created",
        t.elapsed(),
        report.created.len()
    );
    assert!(
        report.found.is_empty(),
        "a fresh region has nothing to adopt: {:?}",
        report.found
    );
    // vpc, 2 subnets, igw, 2 route tables, 2 SGs (+2 rule sets), 4 ENIs, EIP, 4 instances, TG, NLB, listener
    assert_eq!(
        report
            .created
            .iter()
            .filter(|r| r.kind == "instance")
            .count(),
        4,
        "{:#?}",
        report.created
    );
    assert_eq!(report.instances.len(), 4);
    assert!(
        events
            .lock()
            .unwrap()
            .iter()
            .any(|e| e.starts_with("created vpc"))
    );

    // The VPC and its subnets.
    let vpcs = ec2
        .describe_vpcs()
        .filters(tag("kubelius"))
        .send()
        .await
        .unwrap();
    assert_eq!(vpcs.vpcs().len(), 1);
    let vpc = vpcs.vpcs()[0].vpc_id().unwrap().to_owned();
    assert_eq!(vpcs.vpcs()[0].cidr_block(), Some("10.10.16.0/20"));
    let subnets = ec2
        .describe_subnets()
        .filters(tag("kubelius"))
        .send()
        .await
        .unwrap();
    let sn: BTreeMap<String, (String, String, String)> = subnets
        .subnets()
        .iter()
        .map(|s| {
            (
                by_role(s.tags()),
                (
                    s.subnet_id().unwrap().to_owned(),
                    s.cidr_block().unwrap().to_owned(),
                    s.availability_zone().unwrap().to_owned(),
                ),
            )
        })
        .collect();
    assert_eq!(sn["subnet-nodes"].1, "10.10.16.0/24");
    assert_eq!(sn["subnet-gateway"].1, "10.10.31.0/24");
    assert!(sn.values().all(|s| s.2 == "eu-west-3a"), "{sn:?}");
    assert!(
        subnets
            .subnets()
            .iter()
            .all(|s| s.vpc_id() == Some(vpc.as_str()))
    );

    // The internet gateway, attached.
    let igws = ec2
        .describe_internet_gateways()
        .filters(tag("kubelius"))
        .send()
        .await
        .unwrap();
    assert_eq!(igws.internet_gateways().len(), 1);
    let igw = igws.internet_gateways()[0]
        .internet_gateway_id()
        .unwrap()
        .to_owned();
    assert_eq!(
        igws.internet_gateways()[0].attachments()[0].vpc_id(),
        Some(vpc.as_str())
    );

    // Network interfaces with the spec's IPs; the gateway's forwards (source/dest check off).
    let enis = ec2
        .describe_network_interfaces()
        .filters(tag("kubelius"))
        .send()
        .await
        .unwrap();
    let eni: BTreeMap<String, (String, String, bool, String)> = enis
        .network_interfaces()
        .iter()
        .map(|n| {
            (
                by_role(n.tag_set()),
                (
                    n.network_interface_id().unwrap().to_owned(),
                    n.private_ip_address().unwrap().to_owned(),
                    n.source_dest_check().unwrap(),
                    n.groups()[0].group_id().unwrap().to_owned(),
                ),
            )
        })
        .collect();
    assert_eq!(eni.len(), 4, "{eni:?}");
    assert_eq!(eni["eni-gateway"].1, "10.10.31.10");
    assert!(
        !eni["eni-gateway"].2,
        "gateway ENI must not check source/dest"
    );
    for (n, ip) in [
        ("control-01", "10.10.16.11"),
        ("control-02", "10.10.16.12"),
        ("control-03", "10.10.16.13"),
    ] {
        let e = &eni[&format!("eni-{n}")];
        assert_eq!(e.1, ip);
        assert!(e.2, "{n}'s ENI keeps source/dest check");
    }
    let gw_eni = eni["eni-gateway"].0.clone();

    // Security groups with exactly the ports each role needs.
    let sgs = ec2
        .describe_security_groups()
        .filters(tag("kubelius"))
        .send()
        .await
        .unwrap();
    let sg: BTreeMap<String, String> = sgs
        .security_groups()
        .iter()
        .map(|g| (by_role(g.tags()), g.group_id().unwrap().to_owned()))
        .collect();
    assert_eq!(eni["eni-gateway"].3, sg["sg-gateway"]);
    assert_eq!(eni["eni-control-01"].3, sg["sg-nodes"]);
    let rules = |id: String| {
        let ec2 = ec2.clone();
        async move {
            let out = ec2
                .describe_security_group_rules()
                .filters(Filter::builder().name("group-id").values(&id).build())
                .send()
                .await
                .unwrap();
            out.security_group_rules()
                .iter()
                .filter(|r| r.is_egress() == Some(false))
                .map(|r| {
                    let src = r.cidr_ipv4().map(str::to_owned).unwrap_or_else(|| {
                        let g = r
                            .referenced_group_info()
                            .and_then(|g| g.group_id())
                            .unwrap_or_default();
                        if g == id { "self".into() } else { g.to_owned() }
                    });
                    let proto = r.ip_protocol().unwrap().to_owned();
                    let ports = if proto == "-1" {
                        "all".to_owned()
                    } else {
                        format!("{}-{}", r.from_port().unwrap(), r.to_port().unwrap())
                    };
                    format!("{proto} {ports} {src}")
                })
                .collect::<BTreeSet<_>>()
        }
    };
    let want_nodes: BTreeSet<String> = [
        "tcp 6443-6443 10.10.16.0/20",
        "tcp 6443-6443 10.200.0.0/24",
        "tcp 2379-2380 self",
        "tcp 10250-10250 self",
        "tcp 22-22 10.200.0.0/24",
    ]
    .map(String::from)
    .into();
    assert_eq!(rules(sg["sg-nodes"].clone()).await, want_nodes);
    let want_gw: BTreeSet<String> = ["udp 51820-51820 0.0.0.0/0", "-1 all 10.10.16.0/20"]
        .map(String::from)
        .into();
    assert_eq!(rules(sg["sg-gateway"].clone()).await, want_gw);

    // Routes: nodes → gateway ENI (default and tunnel), gateway subnet → internet gateway.
    let rts = ec2
        .describe_route_tables()
        .filters(tag("kubelius"))
        .send()
        .await
        .unwrap();
    let rt: BTreeMap<String, &aws_sdk_ec2::types::RouteTable> = rts
        .route_tables()
        .iter()
        .map(|t| (by_role(t.tags()), t))
        .collect();
    let route = |t: &aws_sdk_ec2::types::RouteTable, dest: &str| {
        t.routes()
            .iter()
            .find(|r| r.destination_cidr_block() == Some(dest))
            .map(|r| {
                r.gateway_id()
                    .or(r.network_interface_id())
                    .unwrap_or_default()
                    .to_owned()
            })
    };
    assert_eq!(
        route(rt["rt-nodes"], "0.0.0.0/0").as_deref(),
        Some(gw_eni.as_str())
    );
    assert_eq!(
        route(rt["rt-nodes"], "10.200.0.0/24").as_deref(),
        Some(gw_eni.as_str())
    );
    assert_eq!(
        route(rt["rt-gateway"], "0.0.0.0/0").as_deref(),
        Some(igw.as_str())
    );
    assert!(
        rt["rt-nodes"]
            .associations()
            .iter()
            .any(|a| a.subnet_id() == Some(sn["subnet-nodes"].0.as_str()))
    );
    assert!(
        rt["rt-gateway"]
            .associations()
            .iter()
            .any(|a| a.subnet_id() == Some(sn["subnet-gateway"].0.as_str()))
    );

    // The Elastic IP on the gateway ENI.
    let eips = ec2
        .describe_addresses()
        .filters(tag("kubelius"))
        .send()
        .await
        .unwrap();
    assert_eq!(eips.addresses().len(), 1);
    assert_eq!(
        eips.addresses()[0].network_interface_id(),
        Some(gw_eni.as_str())
    );
    assert_eq!(
        report.gateway_public_ip.as_deref(),
        eips.addresses()[0].public_ip()
    );

    // Instances: running, on their ENIs, tagged, with their user data.
    let inst = ec2
        .describe_instances()
        .filters(tag("kubelius"))
        .send()
        .await
        .unwrap();
    let instances: Vec<_> = inst
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .collect();
    assert_eq!(instances.len(), 4);
    let mut payload_of: BTreeMap<String, Vec<u8>> = payloads
        .nodes
        .iter()
        .map(|(n, p)| (n.as_str().to_owned(), p.clone()))
        .collect();
    payload_of.insert("gateway".into(), payloads.gateway.clone());
    for i in &instances {
        let unit = i
            .tags()
            .iter()
            .find(|t| t.key() == Some("frankenetes.dev/unit"))
            .and_then(|t| t.value())
            .unwrap()
            .to_owned();
        assert_eq!(i.state().unwrap().name().unwrap().as_str(), "running");
        assert_eq!(i.instance_type().unwrap().as_str(), "t3a.nano");
        assert_eq!(i.image_id(), Some(AMI));
        let eni_id = i.network_interfaces()[0].network_interface_id().unwrap();
        let want_eni = if unit == "gateway" {
            "eni-gateway".to_owned()
        } else {
            format!("eni-{unit}")
        };
        assert_eq!(eni_id, eni[&want_eni].0, "{unit} on its ENI");
        let attr = ec2
            .describe_instance_attribute()
            .instance_id(i.instance_id().unwrap())
            .attribute(aws_sdk_ec2::types::InstanceAttributeName::UserData)
            .send()
            .await
            .unwrap();
        let raw = STANDARD
            .decode(attr.user_data().unwrap().value().unwrap())
            .unwrap();
        assert!(
            raw.len() <= userdata::USER_DATA_LIMIT,
            "{unit}: {} bytes of user data",
            raw.len()
        );
        assert_eq!(
            userdata::decode(&raw).unwrap(),
            payload_of[&unit],
            "{unit}'s Ignition round-trips"
        );
        if unit == "control-02" {
            assert!(payload_of[&unit].len() > userdata::USER_DATA_LIMIT);
            assert!(
                raw.starts_with(br#"{"ignition":{"version":"3.4.0","config":{"replace""#),
                "control-02 boots a stub"
            );
        } else {
            assert_eq!(
                raw, payload_of[&unit],
                "{unit}'s small config goes in as it is"
            );
        }
    }
    let vols = ec2
        .describe_volumes()
        .filters(tag("kubelius"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        vols.volumes().len(),
        4,
        "root volumes carry the tag from RunInstances"
    );

    // The internal NLB: TCP 6443 to the three control planes, tagged.
    let lbs = elb
        .describe_load_balancers()
        .names("kubelius-api")
        .send()
        .await
        .unwrap();
    let lb = &lbs.load_balancers()[0];
    assert_eq!(lb.scheme().unwrap().as_str(), "internal");
    assert_eq!(lb.r#type().unwrap().as_str(), "network");
    let lb_arn = lb.load_balancer_arn().unwrap().to_owned();
    let listeners = elb
        .describe_listeners()
        .load_balancer_arn(&lb_arn)
        .send()
        .await
        .unwrap();
    assert_eq!(listeners.listeners().len(), 1);
    let l = &listeners.listeners()[0];
    assert_eq!(
        (l.port(), l.protocol().unwrap().as_str()),
        (Some(6443), "TCP")
    );
    let tg_arn = l.default_actions()[0]
        .target_group_arn()
        .unwrap()
        .to_owned();
    let health = elb
        .describe_target_health()
        .target_group_arn(&tg_arn)
        .send()
        .await
        .unwrap();
    let targets: BTreeSet<(String, i32)> = health
        .target_health_descriptions()
        .iter()
        .map(|d| {
            (
                d.target().unwrap().id().unwrap().to_owned(),
                d.target().unwrap().port().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        targets,
        [
            ("10.10.16.11".to_owned(), 6443),
            ("10.10.16.12".to_owned(), 6443),
            ("10.10.16.13".to_owned(), 6443)
        ]
        .into()
    );
    let tags = elb
        .describe_tags()
        .resource_arns(&lb_arn)
        .resource_arns(&tg_arn)
        .resource_arns(l.listener_arn().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(tags.tag_descriptions().len(), 3);
    for d in tags.tag_descriptions() {
        assert!(
            d.tags()
                .iter()
                .any(|t| t.key() == Some(ClusterTag::KEY) && t.value() == Some("kubelius")),
            "{:?} lacks the cluster tag",
            d.resource_arn()
        );
    }

    // plan now: everything exists.
    let plan = lab.plan().await.unwrap();
    assert_eq!(plan.to_create(), 0, "{plan}");

    // up again: finds everything, creates nothing, writes nothing.
    moto.record();
    let again = lab.up(&|_| {}).await.unwrap();
    let writes: Vec<String> = moto
        .recorded_actions()
        .into_iter()
        .filter(|a| !is_read(a))
        .collect();
    assert!(
        again.created.is_empty(),
        "second up created {:?}",
        again.created
    );
    assert!(writes.is_empty(), "second up made write calls: {writes:?}");
    assert_eq!(again.instances, report.instances);

    // A second cluster's down must not touch this one: checked by the audit below.
    let t = Instant::now();
    let audit = lab.down(&on).await.unwrap();
    eprintln!("down: {:?}", t.elapsed());
    assert!(audit.is_clean(), "{audit}");
    let live = ec2
        .describe_instances()
        .filters(tag("kubelius"))
        .filters(
            Filter::builder()
                .name("instance-state-name")
                .values("running")
                .values("pending")
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(live.reservations().len(), 0);
    assert!(
        ec2.describe_vpcs()
            .filters(tag("kubelius"))
            .send()
            .await
            .unwrap()
            .vpcs()
            .is_empty()
    );
    assert!(
        elb.describe_target_groups()
            .send()
            .await
            .unwrap()
            .target_groups()
            .is_empty()
    );
    assert!(
        elb.describe_load_balancers()
            .send()
            .await
            .unwrap()
            .load_balancers()
            .is_empty()
    );
    // down again: nothing to do, still clean.
    assert!(lab.down(&|_| {}).await.unwrap().is_clean());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn down_after_an_up_killed_half_way_leaves_nothing() {
    let moto = Moto::start();
    let sdk = moto.sdk();
    let spec = lab_spec("crashy");
    let lab = Lab::new(&sdk, &spec, payloads())
        .unwrap()
        .with_timing(fast());
    let instance_started = Arc::new(tokio::sync::Notify::new());
    let n = instance_started.clone();
    let on = move |e: &Event| {
        if let Event::Created(r) = e
            && r.kind == "instance"
        {
            n.notify_one();
        }
    };
    // Kill `up` (drop its future) as soon as the first instance exists.
    tokio::select! {
        r = lab.up(&on) => panic!("up finished before it could be killed: {r:?}"),
        () = instance_started.notified() => {}
    }
    let half = lab.audit().await.unwrap();
    assert!(
        half.leftovers.iter().any(|r| r.kind == "instance"),
        "{half}"
    );
    assert!(half.leftovers.iter().any(|r| r.kind == "vpc"), "{half}");
    // A fresh Lab value: down needs no state from the crashed run.
    let audit = Lab::new(&sdk, &spec, LabPayloads::default())
        .unwrap()
        .with_timing(fast())
        .down(&|_| {})
        .await
        .unwrap();
    assert!(audit.is_clean(), "{audit}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_makes_no_write_call_and_lists_everything() {
    let moto = Moto::start();
    let lab = Lab::new(&moto.sdk(), &lab_spec("planned"), LabPayloads::default()).unwrap();
    moto.record();
    let plan = lab.plan().await.unwrap();
    let actions = moto.recorded_actions();
    assert!(actions.len() >= 10, "plan looked nothing up: {actions:?}");
    let writes: Vec<&String> = actions.iter().filter(|a| !is_read(a)).collect();
    assert!(writes.is_empty(), "plan made write calls: {writes:?}");
    assert_eq!(plan.to_create(), plan.items.len());
    assert_eq!(plan.ami.as_deref(), Some(AMI));
    let text = plan.to_string();
    for want in [
        "10.10.16.0/20",
        "10.10.31.10",
        "control-03",
        "internal NLB at 10.10.16.10",
        "udp/51820 from 0.0.0.0/0",
        "source:",
        "2026-11",
    ] {
        assert!(text.contains(want), "plan lacks {want:?}:\n{text}");
    }
    // Nothing was created.
    assert!(lab.audit().await.unwrap().is_clean());
}

#[test]
fn the_write_ups_lab_costs_what_its_table_says() {
    // No request is made: the endpoint is never contacted.
    let sdk = static_sdk_config("http://127.0.0.1:9", REGION, "x", "y");
    let plan = Lab::new(&sdk, &lab_spec("kubelius"), LabPayloads::default())
        .unwrap()
        .desired_plan();
    // 4 × t3a.nano ($0.0047) + 1 public IPv4 ($0.005) + NLB ($0.0225) ≈ $0.046; the table says $0.045.
    assert!((0.044..=0.048).contains(&plan.hourly_usd), "{plan}");
    assert!(plan.notes.is_empty(), "{:?}", plan.notes);
    let month = plan.monthly_usd();
    assert!((33.0..=40.0).contains(&month), "{month}");
    let mut bigger = lab_spec("kubelius");
    if let frankenetes_spec::BackendSpec::Aws(a) = &mut bigger.backend {
        a.instance_type = "m9z.huge".into();
    }
    let p = Lab::new(&sdk, &bigger, LabPayloads::default())
        .unwrap()
        .desired_plan();
    assert!(
        p.notes.iter().any(|n| n.contains("m9z.huge")),
        "{:?}",
        p.notes
    );
}

#[test]
fn the_lab_needs_the_aws_backend_and_a_gateway() {
    let sdk = static_sdk_config("http://127.0.0.1:9", REGION, "x", "y");
    let mut spec = lab_spec("kubelius");
    spec.gateway = None;
    let err = Lab::new(&sdk, &spec, LabPayloads::default()).unwrap_err();
    assert!(err.to_string().starts_with("spec.gateway:"), "{err}");
    let local = ClusterSpec::example();
    let err = Lab::new(&sdk, &local, LabPayloads::default()).unwrap_err();
    assert!(err.to_string().contains("spec.backend"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_refuses_a_missing_payload_before_creating_anything() {
    let moto = Moto::start();
    let mut p = payloads();
    p.nodes.remove(&NodeName::try_from("control-03").unwrap());
    let lab = Lab::new(&moto.sdk(), &lab_spec("partial"), p)
        .unwrap()
        .with_timing(fast());
    let err = lab.up(&|_| {}).await.unwrap_err();
    assert!(err.to_string().contains("control-03"), "{err}");
    assert!(lab.audit().await.unwrap().is_clean());
}

/// The real thing: `AWS_PROFILE`/`AWS_REGION` (or the other standard variables) must point
/// at an account you may spend a few cents in. Creates the lab, checks it, deletes it.
/// A config that does not compress (key material does not): over 16 KiB even as the gzip stub.
fn incompressible(tag: &str, bytes: usize) -> Vec<u8> {
    let mut out = format!(
        r#"{{"ignition":{{"version":"3.4.0"}},"storage":{{"files":[{{"path":"/etc/{tag}","contents":{{"source":"data:;base64,"#
    );
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut raw = Vec::with_capacity(bytes);
    while raw.len() < bytes {
        // xorshift: no pattern gzip can use.
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        raw.extend_from_slice(&x.to_le_bytes());
    }
    out.push_str(&STANDARD.encode(&raw));
    out.push_str(r#""}}]}}}"#);
    out.into_bytes()
}

fn sha512sum(data: &[u8]) -> String {
    let mut child = Command::new("sha512sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("sha512sum (coreutils)");
    child.stdin.take().unwrap().write_all(data).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configs_too_large_even_compressed_are_fetched_from_a_private_bucket_that_down_removes() {
    let moto = Moto::start();
    let sdk = moto.sdk();
    let ec2 = aws_sdk_ec2::Client::new(&sdk);
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(true)
            .build(),
    );
    let spec = lab_spec("bigcfg");
    let mut p = payloads();
    let big = incompressible("control-03", 30_000);
    p.nodes
        .insert(NodeName::try_from("control-03").unwrap(), big.clone());
    let lab = Lab::new(&sdk, &spec, p.clone())
        .unwrap()
        .with_timing(fast());

    let plan = lab.desired_plan().to_string();
    assert!(
        plan.contains("s3-bucket") && plan.contains("control-03"),
        "plan names the bucket and who needs it:\n{plan}"
    );
    let report = lab.up(&|_| {}).await.unwrap();
    let bucket = report
        .created
        .iter()
        .find(|r| r.kind == "s3-bucket")
        .map(|r| r.id.clone())
        .expect("up created the payload bucket");
    assert!(bucket.starts_with("frankenetes-bigcfg-"), "{bucket}");

    // The bucket: one, private, tagged; the object is the config.
    let listed = s3.list_buckets().send().await.unwrap();
    let ours: Vec<_> = listed
        .buckets()
        .iter()
        .filter_map(|b| b.name())
        .filter(|n| n.starts_with("frankenetes-bigcfg-"))
        .collect();
    assert_eq!(ours, vec![bucket.as_str()]);
    let pab = s3
        .get_public_access_block()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    let c = pab.public_access_block_configuration().unwrap();
    assert_eq!(
        (
            c.block_public_acls(),
            c.ignore_public_acls(),
            c.block_public_policy(),
            c.restrict_public_buckets()
        ),
        (Some(true), Some(true), Some(true), Some(true))
    );
    let tags = s3
        .get_bucket_tagging()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    assert!(
        tags.tag_set()
            .iter()
            .any(|t| t.key() == "frankenetes.dev/cluster" && t.value() == "bigcfg"),
        "{tags:?}"
    );
    let keys: Vec<String> = s3
        .list_objects_v2()
        .bucket(&bucket)
        .send()
        .await
        .unwrap()
        .contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_owned))
        .collect();
    assert_eq!(
        keys,
        vec!["control-03.ign".to_owned()],
        "only the oversized config"
    );

    // control-03 boots a small stub that fetches its config by URL and checks its hash.
    let out = ec2
        .describe_instances()
        .filters(tag("bigcfg"))
        .filters(
            Filter::builder()
                .name("tag:frankenetes.dev/unit")
                .values("control-03")
                .build(),
        )
        .send()
        .await
        .unwrap();
    let id = out.reservations()[0].instances()[0]
        .instance_id()
        .unwrap()
        .to_owned();
    let attr = ec2
        .describe_instance_attribute()
        .instance_id(&id)
        .attribute(aws_sdk_ec2::types::InstanceAttributeName::UserData)
        .send()
        .await
        .unwrap();
    let raw = STANDARD
        .decode(attr.user_data().unwrap().value().unwrap())
        .unwrap();
    assert!(
        raw.len() <= userdata::USER_DATA_LIMIT,
        "{} bytes",
        raw.len()
    );
    let stub: serde_json::Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(stub["ignition"]["version"], "3.4.0");
    let replace = &stub["ignition"]["config"]["replace"];
    assert_eq!(
        replace["verification"]["hash"],
        format!("sha512-{}", sha512sum(&big)),
        "the stub pins the config's SHA-512"
    );
    let url = replace["source"].as_str().unwrap();
    assert!(
        url.contains("X-Amz-Signature=") && url.contains("X-Amz-Expires=86400"),
        "presigned for a day: {url}"
    );
    let path = url
        .strip_prefix(&moto.url())
        .expect("a URL on the endpoint");
    let (status, body) = moto.http("GET", path).unwrap();
    assert_eq!(status, 200);
    assert_eq!(body, big, "the URL serves the config, byte for byte");

    // A second up finds the bucket; down removes it with its objects.
    let again = lab.up(&|_| {}).await.unwrap();
    assert!(again.created.is_empty(), "{:?}", again.created);
    assert!(again.found.iter().any(|r| r.kind == "s3-bucket"));
    assert!(
        lab.audit()
            .await
            .unwrap()
            .leftovers
            .iter()
            .any(|r| r.kind == "s3-bucket" && r.id == bucket)
    );
    let audit = Lab::new(&sdk, &spec, LabPayloads::default())
        .unwrap()
        .with_timing(fast())
        .down(&|_| {})
        .await
        .unwrap();
    assert!(audit.is_clean(), "{audit}");
    let listed = s3.list_buckets().send().await.unwrap();
    assert!(
        !listed
            .buckets()
            .iter()
            .any(|b| b.name() == Some(bucket.as_str())),
        "down deleted the bucket"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "creates billed AWS resources"]
async fn real_aws_lab_up_and_down() {
    let mut spec = lab_spec("frankenetes-e2e");
    if let frankenetes_spec::BackendSpec::Aws(a) = &mut spec.backend {
        a.region = std::env::var("AWS_REGION").ok();
        a.availability_zone = None;
        a.ami = None; // look up Fedora CoreOS
    }
    let sdk = frankenetes_cloud_aws::load_sdk_config(&spec, None).await;
    let lab = Lab::new(&sdk, &spec, payloads()).unwrap();
    eprintln!("{}", lab.plan().await.unwrap());
    let up = lab.up(&|e| eprintln!("{e}")).await;
    let audit = lab.down(&|e| eprintln!("{e}")).await.unwrap();
    assert!(audit.is_clean(), "LEFT RESOURCES BEHIND: {audit}");
    let up = up.unwrap();
    assert_eq!(up.instances.len(), 4);
    let _: Option<IpAddr> = up
        .gateway_public_ip
        .as_deref()
        .and_then(|ip| ip.parse().ok());
}
