#!/usr/bin/env python3
"""Write fuzz/logs/fuzz.json (or $FUZZ_REPORT) from the logs `scripts/fuzz.sh` leaves in
fuzz/logs/TARGET.log (libFuzzer's final status line and -print_final_stats).

Crashes found are the inputs kept under fuzz/regressions/TARGET/ (one per
crash the campaign found, each also a test of the stable suite); a crash
counts as fixed when the fuzz binary now runs that input cleanly.
Usage: scripts/fuzz_report.py SECONDS TARGET...  (SECONDS is what fuzz.sh ran
with; each target's command comes from its log)
"""
import json
import os
import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
FUZZ = ROOT / "fuzz"
BIN = FUZZ / "target" / "x86_64-unknown-linux-gnu" / "release"


def parse_log(text):
    out = {}
    for key in ("command", "loadavg-start", "loadavg-end", "exit"):
        m = re.search(rf"^{key}: (.*)$", text, re.M)
        out[key] = m.group(1).strip() if m else None
    # The last status line: "#1234  DONE   cov: 10 ft: 20 corp: 5/300b ..." (or the last before a crash).
    status = re.findall(r"^#(\d+)\s+(\w+)\s+cov: (\d+) ft: (\d+) corp: (\d+)/(\d+)(\w+)", text, re.M)
    if status:
        n, kind, cov, ft, corp, size, unit = status[-1]
        scale = {"b": 1, "Kb": 1 << 10, "Mb": 1 << 20}.get(unit, 1)
        out.update(last_status=kind, cov=int(cov), ft=int(ft), corpus_inputs=int(corp), corpus_bytes=int(size) * scale)
    for stat in ("number_of_executed_units", "average_exec_per_sec", "peak_rss_mb"):
        m = re.search(rf"^stat::{stat}:\s*(\d+)", text, re.M)
        out[stat] = int(m.group(1)) if m else None
    m = re.search(r"^Done (\d+) runs in (\d+) second", text, re.M)
    out["seconds"] = int(m.group(2)) if m else None
    out["crashed"] = bool(re.search(r"^==\d+== ERROR: libFuzzer|^SUMMARY: libFuzzer|panicked at", text, re.M))
    # slow-unit-* files are inputs over 10 s, which a SIGSTOP pause explains; not crashes.
    out["artifacts"] = [a for a in re.findall(r"Test unit written to (\S+)", text) if "/slow-unit-" not in a]
    return out


def regression_status(target):
    found = sorted(p for p in (FUZZ / "regressions" / target).glob("*") if p.is_file())
    fixed = 0
    for p in found:
        r = subprocess.run([str(BIN / target), "-runs=1", str(p)], capture_output=True, cwd=FUZZ)
        fixed += r.returncode == 0
    return [str(p.relative_to(ROOT)) for p in found], fixed


def main():
    seconds, targets = int(sys.argv[1]), sys.argv[2:]
    rows = {}
    for t in targets:
        log = FUZZ / "logs" / f"{t}.log"
        s = parse_log(log.read_text(errors="replace"))
        found, fixed = regression_status(t)
        corpus = [p for p in (FUZZ / "corpus" / t).glob("*") if p.is_file()]
        rows[t] = {
            "executions": s["number_of_executed_units"],
            "seconds": s["seconds"],
            "exec_per_second": s["average_exec_per_sec"],
            "cov": s.get("cov"),
            "ft": s.get("ft"),
            "corpus_inputs_libfuzzer": s.get("corpus_inputs"),
            "corpus_bytes_libfuzzer": s.get("corpus_bytes"),
            "corpus_files_on_disk": len(corpus),
            "peak_rss_mb": s["peak_rss_mb"],
            "crashes_found": len(found),
            "crashes_fixed": fixed,
            "crash_inputs": found,
            "open_crash_this_run": s["crashed"] or s["exit"] not in ("0", None),
            "open_crash_artifacts": s["artifacts"],
            "command": s["command"],
            "loadavg_start": s["loadavg-start"],
            "loadavg_end": s["loadavg-end"],
        }
    report = {
        "what": "coverage-guided fuzzing (cargo-fuzz, libFuzzer + ASan) of every reader of outside bytes; docs/fuzzing.md",
        "how": "scripts/fuzz.sh (make fuzz): one libFuzzer process at a time on a 2-core machine shared with builds and tests (so rates vary with its load); "
        "each target's own command and load average below",
        "machine_cores": len(open("/proc/cpuinfo").read().split("processor\t:")) - 1,
        "targets": rows,
        "targets_under_a_million_executions": [t for t, r in rows.items() if (r["executions"] or 0) < 10**6],
        "open_crashes": sum(r["open_crash_this_run"] for r in rows.values())
        + sum(r["crashes_found"] - r["crashes_fixed"] for r in rows.values()),
    }
    # A short check run must not overwrite the campaign's figures: the campaign names its file.
    out = ROOT / os.environ.get("FUZZ_REPORT", "fuzz/logs/fuzz.json")
    out.write_text(json.dumps(report, indent=2) + "\n")
    for t, r in rows.items():
        print(f"{t:18} {r['executions']} runs in {r['seconds']} s, cov {r['cov']} ft {r['ft']}, "
              f"crashes found {r['crashes_found']} fixed {r['crashes_fixed']}, open now: {r['open_crash_this_run']}")
    print(f"wrote {out.relative_to(ROOT)}")
    return 1 if report["open_crashes"] else 0


if __name__ == "__main__":
    sys.exit(main())
