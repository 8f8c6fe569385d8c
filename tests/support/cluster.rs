//! A flowc cluster of real processes for end-to-end tests: a JobManager and
//! TaskManagers started from the built `flowc` binary, on free loopback
//! ports, with their logs in a scratch directory. Every process is killed
//! when the [`Cluster`] is dropped, on success and on panic alike.

use flowc_runtime::client::http::Client;
use flowc_runtime::client::rest::Rest;
use flowc_runtime::config::Config;
use serde_json::Value;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The `flowc` binary under test.
pub fn flowc_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_flowc"))
}

/// A scratch directory for one test, removed when dropped.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("flowc-e2e-{name}-{}-{}", std::process::id(), rand_suffix()));
        std::fs::create_dir_all(&dir).expect("creating a scratch directory");
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos() as u64)
}

pub struct Cluster {
    pub scratch: Scratch,
    pub config: PathBuf,
    pub rest_addr: String,
    pub rpc_port: u16,
    /// How to reach REST as the config says (TLS, token).
    pub client: Client,
    jobmanager: Option<Child>,
    taskmanagers: Vec<Child>,
}

impl Cluster {
    /// A JobManager alone; add TaskManagers with [`Cluster::add_taskmanager`].
    pub fn jobmanager_only(name: &str) -> Cluster {
        Cluster::jobmanager_with(name, "")
    }

    /// A JobManager with extra configuration lines (YAML, `key: value`).
    pub fn jobmanager_with(name: &str, extra_config: &str) -> Cluster {
        let scratch = Scratch::new(name);
        let ports = super::free_ports(2);
        let config = scratch.0.join("flowc.yaml");
        let base = [
            ("jobmanager.rpc.address", "127.0.0.1".to_string()),
            ("jobmanager.rpc.port", ports[1].to_string()),
            ("rest.address", "127.0.0.1".to_string()),
            ("rest.port", ports[0].to_string()),
            ("heartbeat.interval", "1000".to_string()),
            ("heartbeat.timeout", "5000".to_string()),
            ("state.checkpoints.dir", scratch.0.join("checkpoints").display().to_string()),
            ("state.savepoints.dir", scratch.0.join("savepoints").display().to_string()),
            ("web.upload.dir", scratch.0.join("uploads").display().to_string()),
            ("flowc.security.allowed-directories", scratch.0.display().to_string()),
        ];
        // Lines of `extra_config` replace the defaults of the same key.
        let mut text: String = base
            .iter()
            .filter(|(k, _)| !extra_config.lines().any(|l| l.trim_start().starts_with(&format!("{k}:"))))
            .map(|(k, v)| format!("{k}: {v}\n"))
            .collect();
        text.push_str(extra_config);
        std::fs::write(&config, text).expect("writing the cluster config");
        let (loaded, _) = Config::load(Some(&config), true, &[]).expect("the cluster config");
        let client = Client::from_config(&loaded, None).expect("the REST client's config");
        let mut c = Cluster {
            client,
            rest_addr: format!("127.0.0.1:{}", ports[0]),
            rpc_port: ports[1],
            config,
            scratch,
            jobmanager: None,
            taskmanagers: Vec::new(),
        };
        let jm = c.spawn("jobmanager", &["jobmanager"], &[]);
        c.jobmanager = Some(jm);
        c.wait_for("the REST API", Duration::from_secs(30), |c| c.rest().get("/overview").ok());
        c
    }

    /// A JobManager and `n` TaskManagers with `slots` slots each, all registered.
    pub fn start(name: &str, n: usize, slots: u32) -> Cluster {
        Cluster::start_with(name, n, slots, "")
    }

    pub fn start_with(name: &str, n: usize, slots: u32, extra_config: &str) -> Cluster {
        let mut c = Cluster::jobmanager_with(name, extra_config);
        for _ in 0..n {
            c.add_taskmanager(slots);
        }
        c.wait_for_taskmanagers(n);
        c
    }

    pub fn rest(&self) -> Rest {
        Rest::with_client(self.rest_addr.clone(), self.client.clone())
    }

    /// The JobManager's process id.
    pub fn jobmanager_pid(&self) -> u32 {
        self.jobmanager.as_ref().map_or(0, Child::id)
    }

    fn spawn(&self, log: &str, args: &[&str], extra: &[String]) -> Child {
        self.spawn_env(log, args, extra, &[])
    }

    fn spawn_env(&self, log: &str, args: &[&str], extra: &[String], env: &[(&str, &str)]) -> Child {
        let out = File::create(self.scratch.0.join(format!("{log}.log"))).expect("creating a log file");
        let err = out.try_clone().expect("cloning a log file handle");
        let mut cmd = Command::new(flowc_bin());
        cmd.args(args).arg("--config").arg(&self.config);
        for e in extra {
            cmd.arg("-D").arg(e);
        }
        cmd.stdin(Stdio::null()).stdout(out).stderr(err).env("FLOWC_LOG", "info");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.spawn().expect("starting flowc")
    }

    /// Starts one more TaskManager; returns its index.
    pub fn add_taskmanager(&mut self, slots: u32) -> usize {
        let i = self.taskmanagers.len();
        let tm = self.spawn(
            &format!("taskmanager-{i}"),
            &["taskmanager"],
            &[format!("taskmanager.numberOfTaskSlots={slots}")],
        );
        self.taskmanagers.push(tm);
        i
    }

    /// Starts one more TaskManager with `-D` settings of its own; returns its index.
    pub fn add_taskmanager_with(&mut self, slots: u32, settings: &[String]) -> usize {
        let i = self.taskmanagers.len();
        let mut extra = vec![format!("taskmanager.numberOfTaskSlots={slots}")];
        extra.extend_from_slice(settings);
        let tm = self.spawn(&format!("taskmanager-{i}"), &["taskmanager"], &extra);
        self.taskmanagers.push(tm);
        i
    }

    /// Waits until TaskManager `i` exits; its exit status, or `None` after `timeout`.
    pub fn wait_taskmanager_exit(&mut self, i: usize, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(s) = self.taskmanager_exited(i) {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        None
    }

    /// The log of TaskManager `i` so far.
    pub fn taskmanager_log(&self, i: usize) -> String {
        std::fs::read_to_string(self.scratch.0.join(format!("taskmanager-{i}.log"))).unwrap_or_default()
    }

    /// The JobManager's log so far.
    pub fn jobmanager_log(&self) -> String {
        std::fs::read_to_string(self.scratch.0.join("jobmanager.log")).unwrap_or_default()
    }

    /// Starts a TaskManager with extra environment variables (fault injection).
    pub fn add_taskmanager_env(&mut self, slots: u32, env: &[(&str, &str)]) -> usize {
        let i = self.taskmanagers.len();
        let tm = self.spawn_env(
            &format!("taskmanager-{i}"),
            &["taskmanager"],
            &[format!("taskmanager.numberOfTaskSlots={slots}")],
            env,
        );
        self.taskmanagers.push(tm);
        i
    }

    /// Waits until the JobManager exits; its exit status, or `None` after `timeout`.
    pub fn wait_jobmanager_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(s) = self.jobmanager.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        None
    }

    /// The process id of TaskManager `i`.
    pub fn taskmanager_pid(&self, i: usize) -> u32 {
        self.taskmanagers[i].id()
    }

    /// Whether TaskManager `i` has exited (and how).
    pub fn taskmanager_exited(&mut self, i: usize) -> Option<std::process::ExitStatus> {
        self.taskmanagers[i].try_wait().ok().flatten()
    }

    /// SIGKILLs TaskManager `i`.
    pub fn kill_taskmanager(&mut self, i: usize) {
        let tm = &mut self.taskmanagers[i];
        let _ = tm.kill();
        let _ = tm.wait();
    }

    pub fn wait_for_taskmanagers(&self, n: usize) {
        self.wait_for(&format!("{n} TaskManagers"), Duration::from_secs(30), |c| {
            let o = c.rest().get("/overview").ok()?;
            (o.get("taskmanagers")?.as_u64()? as usize >= n).then_some(())
        });
    }

    /// Polls `f` every 100 ms until it gives a value; panics with the logs on timeout.
    pub fn wait_for<T>(&self, what: &str, timeout: Duration, mut f: impl FnMut(&Cluster) -> Option<T>) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(v) = f(self) {
                return v;
            }
            if Instant::now() > deadline {
                panic!("timed out after {timeout:?} waiting for {what}\n{}", self.logs());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until job `id` has completed `more` checkpoints more than now.
    pub fn wait_for_more_checkpoints(&self, id: &str, more: i64) {
        let done = self.metric(id, "numberOfCompletedCheckpoints").unwrap_or(0);
        self.wait_for("more checkpoints", Duration::from_secs(30), |c| {
            (c.metric(id, "numberOfCompletedCheckpoints").unwrap_or(0) >= done + more).then_some(())
        });
    }

    /// Runs a flowc client command against this cluster (`-m` is added).
    pub fn flowc(&self, args: &[&str]) -> std::process::Output {
        Command::new(flowc_bin())
            .args(args)
            .arg("-m")
            .arg(&self.rest_addr)
            .env("FLOWC_CONF_DIR", self.scratch.0.join("no-conf"))
            .output()
            .expect("running flowc")
    }

    /// A job's metric from `/jobs/:jid/metrics?get=…`.
    pub fn metric(&self, id: &str, name: &str) -> Option<i64> {
        let v = self.rest().get(&format!("/jobs/{id}/metrics?get={name}")).ok()?;
        v[0]["value"].as_str()?.parse().ok()
    }

    /// `flowc run -d -m <rest> JOB args…`; returns the job id.
    pub fn submit(&self, job: &Path, args: &[&str]) -> String {
        let out = Command::new(flowc_bin())
            .arg("run")
            .arg("-d")
            .arg("-m")
            .arg(&self.rest_addr)
            .arg(job)
            .args(args)
            .output()
            .expect("running flowc run");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "flowc run failed: {stdout}{}", String::from_utf8_lossy(&out.stderr));
        stdout
            .lines()
            .find_map(|l| l.strip_prefix("Job has been submitted with JobID ").map(str::to_string))
            .unwrap_or_else(|| panic!("no job id in: {stdout}"))
    }

    /// `flowc run -d --config <the cluster's config> JOB args…`: the client
    /// finds the JobManager, its TLS and its token in the config file.
    pub fn submit_with_config(&self, job: &Path, args: &[&str]) -> String {
        let out = Command::new(flowc_bin())
            .args(["run", "-d", "--config"])
            .arg(&self.config)
            .arg(job)
            .args(args)
            .env_remove("FLOWC_REST_TOKEN")
            .output()
            .expect("running flowc run");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "flowc run failed: {stdout}{}", String::from_utf8_lossy(&out.stderr));
        stdout
            .lines()
            .find_map(|l| l.strip_prefix("Job has been submitted with JobID ").map(str::to_string))
            .unwrap_or_else(|| panic!("no job id in: {stdout}"))
    }

    pub fn job(&self, id: &str) -> Value {
        self.rest().get(&format!("/jobs/{id}")).expect("GET /jobs/:id")
    }

    /// Waits until the job and every one of its tasks report `state`.
    pub fn wait_all_tasks(&self, id: &str, state: &str, timeout: Duration) {
        self.wait_for(&format!("job {id} with all tasks {state}"), timeout, |c| {
            let j = c.job(id);
            let total: u64 = j["status-counts"].as_object()?.values().filter_map(Value::as_u64).sum();
            (j["state"] == "RUNNING" && j["status-counts"][state].as_u64()? == total && total > 0).then_some(())
        });
    }

    /// `flowc stop ID` (stop with a savepoint): checks it succeeded, waits
    /// until the job is FINISHED (within `timeout`) and returns the
    /// savepoint's path as the CLI printed it.
    pub fn stop_with_savepoint(&self, id: &str, timeout: Duration) -> String {
        let out = self.flowc(&["stop", id]);
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(out.status.success(), "flowc stop failed: {text}{}", String::from_utf8_lossy(&out.stderr));
        let savepoint = text
            .lines()
            .find_map(|l| l.strip_prefix("Savepoint completed. Path: "))
            .unwrap_or_else(|| panic!("no savepoint path in {text}"))
            .to_string();
        self.wait_job_state(id, "FINISHED", timeout);
        savepoint
    }

    pub fn wait_job_state(&self, id: &str, state: &str, timeout: Duration) -> Value {
        self.wait_for(&format!("job {id} in state {state}"), timeout, |c| {
            let j = c.job(id);
            (j["state"] == state).then_some(j)
        })
    }

    /// The tails of every process log, for failure messages.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        let mut names: Vec<_> = std::fs::read_dir(&self.scratch.0)
            .map(|rd| rd.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "log")).collect())
            .unwrap_or_default();
        names.sort();
        for p in names {
            let text = std::fs::read_to_string(&p).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(40).collect();
            out.push_str(&format!("==== {} ====\n", p.display()));
            for l in tail.into_iter().rev() {
                out.push_str(l);
                out.push('\n');
            }
        }
        out
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for c in self.taskmanagers.iter_mut().chain(self.jobmanager.as_mut()) {
            let _ = c.kill();
            let _ = c.wait();
        }
        if std::thread::panicking() {
            eprintln!("{}", self.logs());
        }
    }
}

/// Another JobManager process of a cluster (a standby, with high
/// availability): the cluster's configuration on REST and RPC ports of its
/// own, its log `<name>.log` beside the others. SIGKILLed when dropped.
pub struct JobManagerProcess {
    child: Child,
    /// Its REST API (a standby's answers are the leader's).
    pub rest: Rest,
    /// Its log's name, without `.log`.
    pub name: String,
}

impl JobManagerProcess {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILLs it and waits until it is gone.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for JobManagerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

impl Cluster {
    /// Starts one more JobManager with the cluster's configuration on free
    /// REST and RPC ports; its log is `<name>.log`.
    pub fn start_jobmanager(&self, name: &str) -> JobManagerProcess {
        let ports = super::free_ports(2);
        let text = std::fs::read_to_string(&self.config).expect("the cluster's config");
        let mut text: String = text
            .lines()
            .filter(|l| !l.starts_with("rest.port:") && !l.starts_with("jobmanager.rpc.port:"))
            .map(|l| format!("{l}\n"))
            .collect();
        text.push_str(&format!("rest.port: {}\njobmanager.rpc.port: {}\n", ports[0], ports[1]));
        let config = self.scratch.0.join(format!("flowc-{name}.yaml"));
        std::fs::write(&config, text).expect("writing a JobManager's config");
        let out = File::create(self.scratch.0.join(format!("{name}.log"))).expect("a log file");
        let err = out.try_clone().expect("a log file");
        let child = Command::new(flowc_bin())
            .args(["jobmanager", "--config"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .env("FLOWC_LOG", "info")
            .spawn()
            .expect("starting a JobManager");
        let rest = Rest::with_client(format!("127.0.0.1:{}", ports[0]), self.client.clone());
        JobManagerProcess { child, rest, name: name.to_string() }
    }

    /// The log `<name>.log` of a process of the cluster so far.
    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.scratch.0.join(format!("{name}.log"))).unwrap_or_default()
    }
}

/// Sends `sig` (`-KILL`, `-STOP`, …) to process `pid`.
pub fn signal(pid: u32, sig: &str) {
    let status = Command::new("kill").args([sig, &pid.to_string()]).status().expect("kill");
    assert!(status.success(), "kill {sig} {pid}");
}

/// The job as `rest` shows it, if it answers.
pub fn job_on(rest: &Rest, id: &str) -> Option<Value> {
    rest.get(&format!("/jobs/{id}")).ok()
}

/// Whether the job (`GET /jobs/:id`) and every one of its tasks are RUNNING.
pub fn all_running(j: &Value) -> bool {
    let total: u64 = j["status-counts"].as_object().map_or(0, |m| m.values().filter_map(Value::as_u64).sum());
    j["state"] == "RUNNING" && total > 0 && j["status-counts"]["RUNNING"].as_u64() == Some(total)
}
