//! `cargo xtask autobahn`: the Autobahn test suite (cases 1.* to 10.*; 12.* and 13.* are
//! permessage-deflate, which the server does not offer) run by `kosoku` against the
//! reference firmware on the simulated board, through the bridge on 127.0.0.1.
//!
//! kosoku is installed in a Python venv under `target/autobahn-venv` on first use. The
//! report (Autobahn's `index.json`/`index.html` and one file per case) is kept under
//! `target/autobahn/`. Prints `autobahn: N passed, M failed`; fails unless every case
//! passed (kosoku's verdict: behavior OK, NON-STRICT or INFORMATIONAL with an acceptable
//! close) and none is NON-STRICT, UNIMPLEMENTED or ERROR.

use crate::{cargo, run, target_dir};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The kosoku release the runner was checked with (`../shared/reference/tooling.md`).
const KOSOKU: &str = "kosoku==0.1.0";
/// Cases run in parallel (the board serves 8 clients).
const PARALLEL: &str = "4";
/// Cases expected: 1.* to 10.*.
const CASES: usize = 301;

pub fn run_autobahn(_args: &[String]) -> Result<(), String> {
    let venv = target_dir().join("autobahn-venv");
    let kosoku = venv.join("bin/kosoku");
    if !kosoku.exists() {
        let mut c = Command::new("python3");
        c.args(["-m", "venv"]).arg(&venv);
        run(c)?;
        let mut c = Command::new(venv.join("bin/pip"));
        c.args(["install", "--quiet", KOSOKU]);
        run(c)?;
    }

    let mut c = cargo();
    c.args(["build", "--release", "-p", "mzw1-sim"]);
    run(c)?;
    let sim_bin = target_dir().join("release/mzw1-sim");
    let mut sim = Command::new(&sim_bin)
        .args(["--listen", "127.0.0.1:0", "--clients", "8", "--quiet"])
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", sim_bin.display()))?;
    let stdout = sim.stdout.take().ok_or("no stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let addr = loop {
        match lines.next() {
            Some(Ok(l)) if l.starts_with("listening on ") => {
                let a = l["listening on ".len()..].split(',').next().unwrap_or("");
                break a.to_string();
            }
            Some(Ok(_)) => {}
            _ => {
                let _ = sim.kill();
                return Err("mzw1-sim did not start listening".into());
            }
        }
    };
    // Keep draining its output so it never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines.by_ref() {});

    let report = target_dir().join("autobahn");
    let _ = std::fs::remove_dir_all(&report);
    let started = Instant::now();
    let status = Command::new(&kosoku)
        .args([
            "-m",
            "fuzzingclient",
            &addr,
            "-x",
            "12.*",
            "-x",
            "13.*",
            "-p",
            PARALLEL,
            "-o",
        ])
        .arg(&report)
        .status();
    let secs = started.elapsed().as_secs_f64();
    sigint(sim.id());
    let deadline = Instant::now() + Duration::from_secs(10);
    while sim.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = sim.kill();
    let _ = sim.wait();
    let status = status.map_err(|e| format!("cannot run kosoku: {e}"))?;

    let summary = summarize(&venv.join("bin/python"), &report.join("index.json"))?;
    println!(
        "autobahn: {} passed, {} failed",
        summary.passed, summary.failed
    );
    println!(
        "autobahn: {} cases in {secs:.1} s: {}; report in {}",
        summary.total,
        summary.breakdown,
        report.display()
    );
    for f in &summary.failures {
        println!("autobahn: FAILED {f}");
    }
    if summary.total != CASES {
        return Err(format!("{} cases ran, {CASES} expected", summary.total));
    }
    if summary.failed > 0 || !status.success() {
        return Err(format!("{} Autobahn cases failed", summary.failed));
    }
    Ok(())
}

fn sigint(pid: u32) {
    // `kill -INT`: the simulator deinitializes the service and exits.
    let _ = Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status();
}

struct Summary {
    total: usize,
    passed: usize,
    failed: usize,
    breakdown: String,
    failures: Vec<String>,
}

/// Reads kosoku's `index.json` with the venv's Python (no JSON parser in xtask).
fn summarize(python: &Path, index: &Path) -> Result<Summary, String> {
    const SCRIPT: &str = r#"
import json, sys, collections
d = json.load(open(sys.argv[1]))
ok_close = {"OK", "INFORMATIONAL"}
total = passed = 0
count = collections.Counter()
for agent, cases in d.items():
    for case, c in sorted(cases.items()):
        total += 1
        b, bc = c["behavior"], c["behaviorClose"]
        count[b] += 1
        if b in ("OK", "INFORMATIONAL") and bc in ok_close:
            passed += 1
        else:
            print("F %s behavior=%s close=%s" % (case, b, bc))
print("T %d %d" % (total, passed))
print("B " + ", ".join("%s %d" % kv for kv in sorted(count.items())))
"#;
    let out = Command::new(python)
        .arg("-c")
        .arg(SCRIPT)
        .arg(index)
        .output()
        .map_err(|e| format!("cannot read {}: {e}", index.display()))?;
    if !out.status.success() {
        return Err(format!(
            "no report at {}: {}",
            index.display(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut s = Summary {
        total: 0,
        passed: 0,
        failed: 0,
        breakdown: String::new(),
        failures: Vec::new(),
    };
    for line in text.lines() {
        if let Some(f) = line.strip_prefix("F ") {
            s.failures.push(f.to_string());
        } else if let Some(t) = line.strip_prefix("T ") {
            let mut it = t.split(' ').filter_map(|v| v.parse().ok());
            s.total = it.next().unwrap_or(0);
            s.passed = it.next().unwrap_or(0);
        } else if let Some(b) = line.strip_prefix("B ") {
            s.breakdown = b.to_string();
        }
    }
    s.failed = s.total - s.passed;
    Ok(s)
}
