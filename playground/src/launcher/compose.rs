//! The docker-compose-like verbs over the services: `up`, `down`, `stop`,
//! `kill`, `scale`, `restart`, plus what `ps` and `logs` need.
//!
//! Start order is [`Service::ALL`] (kafka, jobmanager, taskmanager,
//! clickevent-generator, client); `up SERVICE` also starts what it depends
//! on; stopping goes in reverse. Unlike docker-compose, a bare `up` does not
//! re-run a client that already exited 0: that would submit the job twice
//! (`up client` does re-run it).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rustix::process::Signal;

use super::config::PlaygroundConfig;
use super::error::LaunchError;
use super::kafka::KafkaService;
use super::logs::LogSource;
use super::process::{http_serves, port_open, spawn_detached, wait_until};
use super::ps::{Row, State};
use super::services::{launch, Instance, LaunchContext, Paths, Service, Target};
use super::state::{KafkaMode, Settings, StateDir};

/// Default Kafka client port of the playground (controller: the next one).
pub const DEFAULT_KAFKA_PORT: u16 = 9092;
/// How long `up` waits for the JobManager's REST API to serve.
const JOBMANAGER_READY: Duration = Duration::from_secs(90);

/// Options shared by all verbs.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// State directory [`FLOWC_PLAYGROUND_DIR` or /tmp/flowc-playground].
    pub state_dir: Option<PathBuf>,
    /// flowc configuration file [playground/conf/flowc.yaml].
    pub config: Option<PathBuf>,
    /// Use this existing Kafka cluster instead of starting one.
    pub kafka: Option<String>,
    /// Client port of the playground's own broker [9092].
    pub kafka_port: Option<u16>,
    /// How long a stopping service gets before SIGKILL.
    pub stop_timeout: Option<Duration>,
}

/// Signals `kill` can send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KillSignal {
    Kill,
    Term,
    Int,
    Hup,
}

impl KillSignal {
    fn signal(self) -> Signal {
        match self {
            KillSignal::Kill => Signal::KILL,
            KillSignal::Term => Signal::TERM,
            KillSignal::Int => Signal::INT,
            KillSignal::Hup => Signal::HUP,
        }
    }

    fn number(self) -> i32 {
        match self {
            KillSignal::Kill => 9,
            KillSignal::Term => 15,
            KillSignal::Int => 2,
            KillSignal::Hup => 1,
        }
    }
}

impl std::str::FromStr for KillSignal {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let u = s.to_ascii_uppercase();
        match u.strip_prefix("SIG").unwrap_or(&u) {
            "KILL" | "9" => Ok(KillSignal::Kill),
            "TERM" | "15" => Ok(KillSignal::Term),
            "INT" | "2" => Ok(KillSignal::Int),
            "HUP" | "1" => Ok(KillSignal::Hup),
            _ => Err(format!("unsupported signal {s:?} (use KILL, TERM, INT or HUP)")),
        }
    }
}

/// One playground: its state directory, settings and services.
#[derive(Debug)]
pub struct Playground {
    state: StateDir,
    settings: Settings,
    config: PlaygroundConfig,
    paths: Paths,
    kafka: KafkaService,
    stop_timeout: Duration,
}

impl Playground {
    /// Opens the playground of the state directory; options given override
    /// the settings saved by an earlier `up`.
    pub fn open(opts: Options) -> Result<Playground, LaunchError> {
        let state = opts.state_dir.clone().map_or_else(StateDir::from_env, StateDir::new);
        let paths = Paths::discover();
        let saved = state.load_settings()?;
        let kafka = match (&opts.kafka, opts.kafka_port) {
            (Some(_), Some(_)) => {
                return Err(LaunchError::Usage("--kafka and --kafka-port exclude each other".to_owned()))
            }
            (Some(addr), None) => KafkaMode::External { bootstrap: addr.clone() },
            (None, Some(port)) => KafkaMode::Local { port, controller_port: controller_port(port)? },
            (None, None) => saved
                .as_ref()
                .map_or(KafkaMode::Local { port: DEFAULT_KAFKA_PORT, controller_port: DEFAULT_KAFKA_PORT + 1 }, |s| {
                    s.kafka.clone()
                }),
        };
        let config_file = match &opts.config {
            Some(c) => std::path::absolute(c).map_err(LaunchError::io(format!("resolving {}", c.display())))?,
            None => saved
                .as_ref()
                .map(|s| s.config.clone())
                .unwrap_or_else(|| paths.root.join("playground/conf/flowc.yaml")),
        };
        let config = PlaygroundConfig::load(&config_file)?;
        let kafka_service = KafkaService::new(&paths.kafka_sh, state.kafka_dir());
        Ok(Playground {
            settings: Settings { kafka, config: config_file },
            config,
            kafka: kafka_service,
            state,
            paths,
            stop_timeout: opts.stop_timeout.unwrap_or(Duration::from_secs(20)),
        })
    }

    pub fn state_dir(&self) -> &Path {
        self.state.root()
    }

    pub fn config(&self) -> &PlaygroundConfig {
        &self.config
    }

    pub fn bootstrap(&self) -> String {
        self.settings.kafka.bootstrap()
    }

    fn save(&self) -> Result<(), LaunchError> {
        self.state.save_settings(&self.settings)
    }

    // ------------------------------------------------------------ status --

    /// Instances that exist (were created and not removed), in start order.
    pub fn instances(&self) -> Vec<Instance> {
        let mut v: Vec<Instance> = self.state.instances().iter().filter_map(|n| Instance::parse(n)).collect();
        v.sort();
        v
    }

    fn exists(&self, inst: Instance) -> bool {
        self.state.command(&inst.name()).is_some()
    }

    /// Whether `inst` runs.
    pub fn is_up(&self, inst: Instance) -> bool {
        match (inst.service, &self.settings.kafka) {
            (Service::Kafka, KafkaMode::Local { .. }) => self.kafka.process().is_some(),
            (Service::Kafka, KafkaMode::External { bootstrap }) => bootstrap
                .split(',')
                .next()
                .and_then(|a| a.rsplit_once(':'))
                .and_then(|(h, p)| Some((h.to_owned(), p.parse().ok()?)))
                .is_some_and(|(h, p)| port_open(&h, p)),
            _ => self.state.pid(&inst.name()).is_some_and(|p| p.alive()),
        }
    }

    fn state_of(&self, inst: Instance) -> State {
        if self.is_up(inst) {
            State::Up
        } else {
            State::Exit(self.state.exit_code(&inst.name()))
        }
    }

    fn ports(&self, service: Service) -> Vec<String> {
        match (service, &self.settings.kafka) {
            (Service::Kafka, KafkaMode::Local { port, controller_port }) => {
                vec![format!("127.0.0.1:{port}"), format!("127.0.0.1:{controller_port}")]
            }
            (Service::Kafka, KafkaMode::External { bootstrap }) => vec![bootstrap.clone()],
            (Service::JobManager, _) => {
                vec![format!("{}:{}", self.config.rest_address, self.config.rpc_port), self.config.rest_endpoint()]
            }
            _ => Vec::new(),
        }
    }

    /// The rows of `ps`.
    pub fn rows(&self) -> Vec<Row> {
        self.instances()
            .into_iter()
            .map(|i| Row {
                name: i.name(),
                command: self.state.command(&i.name()).unwrap_or_default(),
                state: self.state_of(i),
                ports: self.ports(i.service),
            })
            .collect()
    }

    /// Existing instances `target` names.
    fn resolve(&self, target: Target) -> Vec<Instance> {
        match target {
            Target::Instance(i) => [i].into_iter().filter(|i| self.exists(*i)).collect(),
            Target::Service(s) => self.instances().into_iter().filter(|i| i.service == s).collect(),
        }
    }

    fn resolve_existing(&self, target: Target) -> Result<Vec<Instance>, LaunchError> {
        let v = self.resolve(target);
        if v.is_empty() {
            let name = match target {
                Target::Service(s) => s.to_string(),
                Target::Instance(i) => i.name(),
            };
            return Err(LaunchError::Usage(format!(
                "no such service in this playground: {name} (see `playground ps`; start it with `playground up -d {name}`)"
            )));
        }
        Ok(v)
    }

    /// Log files of `target`, or of every instance.
    pub fn log_sources(&self, target: Option<Target>) -> Result<Vec<LogSource>, LaunchError> {
        let instances = match target {
            None => self.instances(),
            Some(t) => self.resolve_existing(t)?,
        };
        instances
            .into_iter()
            .map(|i| {
                let path = match (i.service, &self.settings.kafka) {
                    (Service::Kafka, KafkaMode::Local { .. }) => self.kafka.log_file(),
                    (Service::Kafka, KafkaMode::External { bootstrap }) => {
                        return Err(LaunchError::Usage(format!(
                            "kafka is an external cluster ({bootstrap}); its logs are not here"
                        )))
                    }
                    _ => self.state.log_file(&i.name()),
                };
                Ok(LogSource { name: i.name(), path })
            })
            .collect()
    }

    // ---------------------------------------------------------------- up --

    /// Starts `targets` (all services if empty) and what they depend on;
    /// returns the instances it covers, for following their logs.
    pub fn up(&self, targets: &[Target]) -> Result<Vec<Instance>, LaunchError> {
        self.state.ensure()?;
        self.save()?;
        let explicit: BTreeSet<Service> = targets.iter().map(Target::service).collect();
        let mut wanted: BTreeSet<Service> =
            if targets.is_empty() { Service::ALL.into_iter().collect() } else { explicit.clone() };
        for s in wanted.clone() {
            wanted.extend(s.depends_on());
        }
        let mut covered = Vec::new();
        for service in Service::ALL.into_iter().filter(|s| wanted.contains(s)) {
            let instances: Vec<Instance> = match service {
                Service::TaskManager => {
                    let named: Vec<Instance> = targets
                        .iter()
                        .filter_map(|t| match t {
                            Target::Instance(i) => Some(*i),
                            Target::Service(_) => None,
                        })
                        .collect();
                    let all_named = targets.contains(&Target::Service(Service::TaskManager)) || targets.is_empty();
                    let existing = self.resolve(Target::Service(Service::TaskManager));
                    if !named.is_empty() && !all_named {
                        named
                    } else if existing.is_empty() {
                        vec![Instance::single(Service::TaskManager)]
                    } else {
                        existing
                    }
                }
                s => vec![Instance::single(s)],
            };
            for inst in instances {
                covered.push(inst);
                if self.is_up(inst) {
                    if explicit.contains(&service) || targets.is_empty() {
                        println!("{inst} is up-to-date");
                    }
                    continue;
                }
                if service == Service::Client
                    && !explicit.contains(&Service::Client)
                    && self.state.exit_code(&inst.name()) == Some(0)
                {
                    println!("{inst} already ran (Exit 0); `playground up -d client` runs it again");
                    continue;
                }
                if service == Service::Client {
                    self.wait_for_jobmanager()?;
                }
                self.start(inst)?;
                if service == Service::JobManager {
                    self.wait_for_jobmanager()?;
                }
            }
        }
        Ok(covered)
    }

    fn wait_for_jobmanager(&self) -> Result<(), LaunchError> {
        let inst = Instance::single(Service::JobManager);
        let (host, port) = (self.config.rest_address.clone(), self.config.rest_port);
        wait_until(
            JOBMANAGER_READY,
            // Not just the port: with high availability a JobManager
            // answers 503 until a leader is elected, and the client's
            // submission would fail.
            || http_serves(&host, port, "/overview"),
            || (!self.is_up(inst)).then(|| format!("the jobmanager exited ({})", self.state_of(inst))),
        )
        .map_err(|reason| LaunchError::NotReady {
            service: inst.name(),
            reason: format!("REST port {host}:{port}: {reason}"),
        })
    }

    /// Starts one instance that is not running.
    fn start(&self, inst: Instance) -> Result<(), LaunchError> {
        let name = inst.name();
        if inst.service == Service::Kafka {
            match &self.settings.kafka {
                KafkaMode::External { bootstrap } => {
                    self.state.record_created(&name, &format!("external cluster at {bootstrap}"))?;
                    println!("Using the Kafka cluster at {bootstrap}");
                }
                KafkaMode::Local { port, controller_port } => {
                    println!("Starting {name} ...");
                    self.kafka.start(*port, *controller_port)?;
                    self.state.record_created(&name, &KafkaService::display(*port, *controller_port))?;
                    let _ = std::fs::remove_file(self.state.exit_file(&name));
                    println!("Starting {name} ... done");
                }
            }
            return Ok(());
        }
        if inst.service == Service::JobManager {
            for port in [self.config.rest_port, self.config.rpc_port] {
                if port_open(&self.config.rest_address, port) {
                    return Err(LaunchError::PortInUse { service: name, port });
                }
            }
        }
        let bootstrap = self.bootstrap();
        let cx = LaunchContext {
            paths: &self.paths,
            config_file: &self.settings.config,
            config: &self.config,
            bootstrap: &bootstrap,
            log_dir: &self.state.log_dir(),
        };
        let Some(l) = launch(inst, &cx) else {
            return Err(LaunchError::Usage(format!("{name} has no command line (internal; a bug)")));
        };
        if !l.program.is_file() {
            let (what, env) = match inst.service {
                Service::ClickEventGenerator => ("clickevent-generator", "FLOWC_ROOT"),
                _ => ("flowc", "FLOWC_BIN"),
            };
            return Err(LaunchError::MissingProgram { what: what.to_owned(), path: l.program, env });
        }
        let me = std::env::current_exe().map_err(LaunchError::io("finding the launcher itself"))?;
        let mut args = vec![
            "supervise".to_owned(),
            "--exit-file".to_owned(),
            self.state.exit_file(&name).display().to_string(),
            "--".to_owned(),
            l.program.display().to_string(),
        ];
        args.extend(l.args.iter().cloned());
        let banner = format!(
            "==== {} playground: starting {name}: {}",
            chrono::Utc::now().format("%Y-%m-%d %H:%M:%S"),
            l.display
        );
        self.state.record_created(&name, &l.display)?;
        let pid = spawn_detached(&me, &args, &self.paths.root, &self.state.log_file(&name), &banner)?;
        self.state.record_pid(&name, pid)?;
        println!("Starting {name} ... done");
        Ok(())
    }

    // -------------------------------------------------------- stop, kill --

    /// Stops one instance: SIGTERM, SIGKILL after the stop timeout.
    fn stop_instance(&self, inst: Instance) -> Result<(), LaunchError> {
        let name = inst.name();
        if inst.service == Service::Kafka {
            if let KafkaMode::Local { .. } = self.settings.kafka {
                if self.kafka.process().is_some() {
                    println!("Stopping {name} ...");
                    self.kafka.stop()?;
                    self.state.record_exit(&name, 143)?;
                    println!("Stopping {name} ... done");
                }
            }
            return Ok(());
        }
        let Some(p) = self.state.pid(&name).filter(|p| p.alive()) else {
            return Ok(());
        };
        println!("Stopping {name} ...");
        p.signal(Signal::TERM).map_err(LaunchError::io(format!("stopping {name}")))?;
        if !p.wait_gone(self.stop_timeout) {
            println!("{name} did not stop within {} s; killing it", self.stop_timeout.as_secs());
            p.signal_group(Signal::KILL).map_err(LaunchError::io(format!("killing {name}")))?;
            p.wait_gone(Duration::from_secs(5));
            if self.state.exit_code(&name).is_none() {
                self.state.record_exit(&name, 137)?;
            }
        }
        println!("Stopping {name} ... done");
        Ok(())
    }

    /// Stops `targets` (all if empty), keeping them for `ps` and `up`.
    pub fn stop(&self, targets: &[Target]) -> Result<(), LaunchError> {
        let mut instances: Vec<Instance> = if targets.is_empty() {
            self.instances()
        } else {
            let mut v = Vec::new();
            for t in targets {
                v.extend(self.resolve_existing(*t)?);
            }
            v
        };
        instances.sort();
        instances.dedup();
        for inst in instances.into_iter().rev() {
            self.stop_instance(inst)?;
        }
        Ok(())
    }

    /// Sends `sig` to `target` at once (SIGKILL by default, like
    /// `docker-compose kill`): a simulated crash.
    pub fn kill(&self, target: Target, sig: KillSignal) -> Result<(), LaunchError> {
        for inst in self.resolve_existing(target)? {
            let name = inst.name();
            let process = match (inst.service, &self.settings.kafka) {
                (Service::Kafka, KafkaMode::External { bootstrap }) => {
                    return Err(LaunchError::Usage(format!(
                        "kafka is an external cluster ({bootstrap}); the playground does not manage it"
                    )))
                }
                (Service::Kafka, KafkaMode::Local { .. }) => self.kafka.process(),
                _ => self.state.pid(&name).filter(|p| p.alive()),
            };
            let Some(p) = process else {
                println!("{name} is not running");
                continue;
            };
            println!("Killing {name} ...");
            let kafka = inst.service == Service::Kafka;
            let result =
                if sig == KillSignal::Kill && !kafka { p.signal_group(sig.signal()) } else { p.signal(sig.signal()) };
            result.map_err(LaunchError::io(format!("signalling {name}")))?;
            if sig == KillSignal::Kill {
                p.wait_gone(Duration::from_secs(5));
                if kafka || self.state.exit_code(&name).is_none() {
                    self.state.record_exit(&name, 128 + sig.number())?;
                }
            }
            println!("Killing {name} ... done");
        }
        Ok(())
    }

    /// Stops and restarts `target`.
    pub fn restart(&self, target: Target) -> Result<(), LaunchError> {
        self.save()?;
        for inst in self.resolve_existing(target)? {
            self.stop_instance(inst)?;
            println!("Restarting {inst} ...");
            self.start(inst)?;
            if inst.service == Service::JobManager {
                self.wait_for_jobmanager()?;
            }
        }
        Ok(())
    }

    /// Runs exactly `n` instances of a scalable service.
    pub fn scale(&self, service: Service, n: u32) -> Result<(), LaunchError> {
        if !service.scalable() {
            return Err(LaunchError::Usage(format!("{service} cannot be scaled (only taskmanager can)")));
        }
        self.state.ensure()?;
        self.save()?;
        for i in 1..=n {
            let inst = Instance { service, index: Some(i) };
            if !self.is_up(inst) {
                self.start(inst)?;
            }
        }
        for inst in self.resolve(Target::Service(service)) {
            if inst.index.is_some_and(|i| i > n) {
                self.stop_instance(inst)?;
                self.state.remove_records(&inst.name());
                println!("Removing {inst} ... done");
            }
        }
        Ok(())
    }

    // -------------------------------------------------------------- down --

    /// Stops and removes every service; with `volumes` also deletes Kafka's
    /// data, the logs and the checkpoint and savepoint directories.
    pub fn down(&self, volumes: bool) -> Result<(), LaunchError> {
        let mut instances = self.instances();
        let kafka = Instance::single(Service::Kafka);
        if !instances.contains(&kafka) && self.kafka.process().is_some() {
            instances.insert(0, kafka);
        }
        for inst in instances.iter().rev() {
            self.stop_instance(*inst)?;
        }
        for inst in &instances {
            self.state.remove_records(&inst.name());
            println!("Removing {inst} ... done");
        }
        let _ = std::fs::remove_file(self.state.root().join("settings.json"));
        if volumes {
            let mut dirs = vec![self.state.root().to_path_buf()];
            dirs.extend(self.config.checkpoints_dir.clone());
            dirs.extend(self.config.savepoints_dir.clone());
            dirs.extend(self.config.upload_dir.clone());
            for dir in dirs {
                // `s3://…` is object storage, not a local directory: its
                // server's data goes with the server.
                if dir.to_str().is_some_and(|d| d.contains("://")) {
                    println!("Leaving {} (object storage) ... done", dir.display());
                    continue;
                }
                remove_dir(&dir)?;
            }
        }
        Ok(())
    }
}

fn controller_port(port: u16) -> Result<u16, LaunchError> {
    port.checked_add(1)
        .ok_or_else(|| LaunchError::Usage(format!("--kafka-port {port} leaves no room for the controller port")))
}

/// Deletes `dir`, refusing paths too short to be a playground directory.
fn remove_dir(dir: &Path) -> Result<(), LaunchError> {
    let deep_enough = dir.is_absolute() && dir.components().count() >= 3
        || dir.starts_with(std::env::temp_dir()) && dir != std::env::temp_dir();
    if !deep_enough || std::env::var_os("HOME").is_some_and(|h| Path::new(&h) == dir) {
        return Err(LaunchError::Usage(format!(
            "refusing to delete {} (too close to the root; delete it by hand)",
            dir.display()
        )));
    }
    match std::fs::remove_dir_all(dir) {
        Ok(()) => {
            println!("Removing {} ... done", dir.display());
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(LaunchError::io(format!("deleting {}", dir.display()))(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_parse() {
        assert_eq!("SIGKILL".parse(), Ok(KillSignal::Kill));
        assert_eq!("term".parse(), Ok(KillSignal::Term));
        assert_eq!("9".parse(), Ok(KillSignal::Kill));
        assert!("STOP".parse::<KillSignal>().is_err());
    }

    #[test]
    fn short_paths_are_not_deleted() {
        for p in ["/", "/tmp", "relative/dir"] {
            assert!(remove_dir(Path::new(p)).is_err(), "{p}");
        }
    }
}
