//! The playground's services, the order they start in, what each depends
//! on, and the command line each runs.

use std::fmt;
use std::path::{Path, PathBuf};

use super::config::PlaygroundConfig;
use super::error::LaunchError;

/// A service of the playground (a docker-compose service in the original).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Service {
    Kafka,
    JobManager,
    TaskManager,
    ClickEventGenerator,
    Client,
}

impl Service {
    /// All services in start order.
    pub const ALL: [Service; 5] =
        [Service::Kafka, Service::JobManager, Service::TaskManager, Service::ClickEventGenerator, Service::Client];

    pub fn name(self) -> &'static str {
        match self {
            Service::Kafka => "kafka",
            Service::JobManager => "jobmanager",
            Service::TaskManager => "taskmanager",
            Service::ClickEventGenerator => "clickevent-generator",
            Service::Client => "client",
        }
    }

    /// Only TaskManagers scale; the others hold fixed ports or run once.
    pub fn scalable(self) -> bool {
        self == Service::TaskManager
    }

    /// Services that `up` starts first (docker-compose `depends_on`).
    pub fn depends_on(self) -> &'static [Service] {
        match self {
            Service::Kafka | Service::JobManager => &[],
            Service::TaskManager => &[Service::JobManager],
            Service::ClickEventGenerator => &[Service::Kafka],
            Service::Client => &[Service::Kafka, Service::JobManager],
        }
    }

    fn from_name(s: &str) -> Option<Service> {
        Service::ALL.into_iter().find(|svc| svc.name() == s)
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One running copy of a service: `taskmanager-2`, or `jobmanager`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instance {
    pub service: Service,
    /// 1-based index for scalable services.
    pub index: Option<u32>,
}

impl Instance {
    pub fn single(service: Service) -> Instance {
        Instance { service, index: service.scalable().then_some(1) }
    }

    pub fn name(&self) -> String {
        match self.index {
            Some(i) => format!("{}-{i}", self.service.name()),
            None => self.service.name().to_owned(),
        }
    }

    /// Parses an instance name as the state directory holds them.
    pub fn parse(s: &str) -> Option<Instance> {
        if let Some(svc) = Service::from_name(s) {
            return (!svc.scalable()).then_some(Instance { service: svc, index: None });
        }
        let (base, n) = s.rsplit_once('-')?;
        let svc = Service::from_name(base).filter(|s| s.scalable())?;
        let index = n.parse().ok().filter(|i| *i > 0)?;
        Some(Instance { service: svc, index: Some(index) })
    }
}

impl fmt::Display for Instance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// What a verb acts on: a whole service (all its instances) or one
/// instance (`taskmanager-2`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Service(Service),
    Instance(Instance),
}

impl Target {
    pub fn service(&self) -> Service {
        match self {
            Target::Service(s) => *s,
            Target::Instance(i) => i.service,
        }
    }
}

impl std::str::FromStr for Target {
    type Err = LaunchError;

    fn from_str(s: &str) -> Result<Target, LaunchError> {
        if let Some(svc) = Service::from_name(s) {
            return Ok(Target::Service(svc));
        }
        Instance::parse(s).map(Target::Instance).ok_or_else(|| {
            LaunchError::Usage(format!(
                "no such service: {s:?} (services: {}; taskmanager instances are taskmanager-1, taskmanager-2, …)",
                Service::ALL.map(Service::name).join(", ")
            ))
        })
    }
}

/// Where the programs and files the services use are.
#[derive(Debug, Clone)]
pub struct Paths {
    /// The repository root: the services' working directory.
    pub root: PathBuf,
    pub flowc: PathBuf,
    pub generator: PathBuf,
    pub kafka_sh: PathBuf,
}

impl Paths {
    /// Finds the programs: `FLOWC_BIN` or `flowc` next to this executable
    /// (else in `target/release`, `target/debug`); `clickevent-generator`
    /// next to this executable; `kafka.sh` in the repository
    /// (`FLOWC_ROOT` or the checkout this launcher was built from).
    pub fn discover() -> Paths {
        let root = std::env::var_os("FLOWC_ROOT").filter(|v| !v.is_empty()).map(PathBuf::from).unwrap_or_else(|| {
            let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
            manifest.parent().unwrap_or(manifest).to_path_buf()
        });
        let exe_dir = std::env::current_exe().ok().and_then(|e| e.parent().map(Path::to_path_buf));
        let sibling = |name: &str| exe_dir.as_ref().map(|d| d.join(name));
        let flowc = std::env::var_os("FLOWC_BIN")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| sibling("flowc").filter(|p| p.is_file()))
            .or_else(|| {
                ["release", "debug"].iter().map(|p| root.join("target").join(p).join("flowc")).find(|p| p.is_file())
            })
            .unwrap_or_else(|| root.join("target/release/flowc"));
        let generator =
            sibling("clickevent-generator").unwrap_or_else(|| root.join("target/release/clickevent-generator"));
        let kafka_sh = root.join("playground/kafka/kafka.sh");
        Paths { root, flowc, generator, kafka_sh }
    }

    /// `path` relative to the root if it is inside it (for display and for
    /// the command lines, which run in the root).
    pub fn relative<'a>(&self, path: &'a Path) -> &'a Path {
        path.strip_prefix(&self.root).unwrap_or(path)
    }
}

/// The program and arguments of one service instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    pub program: PathBuf,
    pub args: Vec<String>,
    /// Short form for `ps` and the log banner (`flowc jobmanager --config …`;
    /// without the `-D log.file=…` that each cluster process is given).
    pub display: String,
}

/// Everything the command lines depend on.
#[derive(Debug, Clone)]
pub struct LaunchContext<'a> {
    pub paths: &'a Paths,
    pub config_file: &'a Path,
    pub config: &'a PlaygroundConfig,
    pub bootstrap: &'a str,
    /// Where the JobManager and the TaskManagers write their log files.
    pub log_dir: &'a Path,
}

/// The log file a cluster process of `instance` writes (`log.file`): what
/// REST serves as its log (`/jobmanager/log`, `/taskmanagers/:id/log`),
/// beside the standard output that `playground logs` reads.
pub fn process_log_file(log_dir: &Path, instance: Instance) -> PathBuf {
    log_dir.join(format!("flowc-{instance}.log"))
}

/// The command line of `instance` (not Kafka, which `kafka.sh` runs).
pub fn launch(instance: Instance, cx: &LaunchContext<'_>) -> Option<Launch> {
    let config = cx.paths.relative(cx.config_file).display().to_string();
    let log_file = format!("log.file={}", process_log_file(cx.log_dir, instance).display());
    let cluster = |role: &str| {
        let display = format!("flowc {role} --config {config}");
        let args = [role, "--config", &config, "-D", &log_file].map(str::to_owned).to_vec();
        Launch { program: cx.paths.flowc.clone(), args, display }
    };
    let flowc = |args: Vec<String>| {
        let display = format!("flowc {}", args.join(" "));
        Launch { program: cx.paths.flowc.clone(), args, display }
    };
    let s = |v: &[&str]| v.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
    match instance.service {
        Service::Kafka => None,
        Service::JobManager => Some(cluster("jobmanager")),
        Service::TaskManager => Some(cluster("taskmanager")),
        Service::Client => Some(flowc(s(&[
            "run",
            "-d",
            "-p",
            "2",
            "-m",
            &cx.config.rest_endpoint(),
            "jobs/click_count.flow",
            "--bootstrap.servers",
            cx.bootstrap,
            "--checkpointing",
            "--event-time",
        ]))),
        Service::ClickEventGenerator => {
            let args = s(&["--bootstrap.servers", cx.bootstrap, "--topic", "input"]);
            Some(Launch {
                program: cx.paths.generator.clone(),
                display: format!("clickevent-generator {}", args.join(" ")),
                args,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse() {
        let t = |s: &str| s.parse::<Target>().ok();
        assert_eq!(t("kafka"), Some(Target::Service(Service::Kafka)));
        assert_eq!(t("taskmanager"), Some(Target::Service(Service::TaskManager)));
        assert_eq!(
            t("taskmanager-2"),
            Some(Target::Instance(Instance { service: Service::TaskManager, index: Some(2) }))
        );
        assert_eq!(t("taskmanager-0"), None);
        assert_eq!(t("jobmanager-1"), None);
        assert_eq!(t("zookeeper"), None);
        assert_eq!(t("clickevent-generator").map(|t| t.service()), Some(Service::ClickEventGenerator));
    }

    #[test]
    fn instance_names_round_trip() {
        for i in [
            Instance::single(Service::JobManager),
            Instance::single(Service::TaskManager),
            Instance { service: Service::TaskManager, index: Some(12) },
            Instance::single(Service::ClickEventGenerator),
        ] {
            assert_eq!(Instance::parse(&i.name()), Some(i));
        }
        assert_eq!(Instance::single(Service::TaskManager).name(), "taskmanager-1");
    }

    #[test]
    fn command_lines_match_the_playground() {
        let paths = Paths {
            root: PathBuf::from("/repo"),
            flowc: PathBuf::from("/repo/target/release/flowc"),
            generator: PathBuf::from("/repo/target/release/clickevent-generator"),
            kafka_sh: PathBuf::from("/repo/playground/kafka/kafka.sh"),
        };
        let config = PlaygroundConfig::default();
        let cx = LaunchContext {
            paths: &paths,
            config_file: Path::new("/repo/playground/conf/flowc.yaml"),
            config: &config,
            bootstrap: "127.0.0.1:9092",
            log_dir: Path::new("/tmp/flowc-playground/log"),
        };
        let d = |s| launch(Instance::single(s), &cx).map(|l| l.display);
        assert_eq!(d(Service::JobManager).as_deref(), Some("flowc jobmanager --config playground/conf/flowc.yaml"));
        assert_eq!(d(Service::TaskManager).as_deref(), Some("flowc taskmanager --config playground/conf/flowc.yaml"));
        assert_eq!(
            d(Service::Client).as_deref(),
            Some("flowc run -d -p 2 -m 127.0.0.1:8081 jobs/click_count.flow --bootstrap.servers 127.0.0.1:9092 --checkpointing --event-time")
        );
        assert_eq!(
            d(Service::ClickEventGenerator).as_deref(),
            Some("clickevent-generator --bootstrap.servers 127.0.0.1:9092 --topic input")
        );
        assert_eq!(d(Service::Kafka), None);
        // Each cluster process writes its own log file, named for its instance.
        let second = Instance { service: Service::TaskManager, index: Some(2) };
        assert_eq!(
            launch(second, &cx).map(|l| l.args),
            Some(
                ["taskmanager", "--config", "playground/conf/flowc.yaml", "-D"]
                    .into_iter()
                    .map(str::to_owned)
                    .chain(["log.file=/tmp/flowc-playground/log/flowc-taskmanager-2.log".to_owned()])
                    .collect()
            )
        );
    }
}
