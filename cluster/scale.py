"""Ask the Ray autoscaler for N GPU workers now and keep them, or release them. Run it on the head node:

    ray exec cluster/aws-gpu.yaml "python ~/tune-hardbatch/cluster/scale.py 8"   # 8 GPU workers, wait for them
    ray exec cluster/aws-gpu.yaml "python ~/tune-hardbatch/cluster/scale.py 0"   # release them

Why: `tune-hardbatch search --address` checks the trial resources against the nodes that are up when it
starts, and the GPU group scales from zero; a head with no CPUs and no workers would be rejected. The request
stays in force (the autoscaler neither adds nor removes below it) until the next call: release it after
the search, and idle workers are terminated after idle_timeout_minutes.
"""

from __future__ import annotations

import argparse
import sys
import time


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("gpus", type=int, help="GPU workers (1 GPU each) to hold; 0 releases the request")
    parser.add_argument("--address", default="auto", help="the cluster (default: the one on this node)")
    parser.add_argument("--timeout", type=float, default=1200.0,
                        help="seconds to wait until the GPUs are up (0: do not wait); spot capacity can be slow")
    args = parser.parse_args(argv)
    if args.gpus < 0:
        parser.error("gpus must be >= 0")

    import ray
    from ray.autoscaler.sdk import request_resources

    ray.init(address=args.address, logging_level="ERROR", log_to_driver=False)
    try:
        request_resources(bundles=[{"GPU": 1}] * args.gpus)
        print(f"requested {args.gpus} GPU workers", flush=True)
        if args.timeout <= 0:
            return 0
        deadline = time.monotonic() + args.timeout
        while True:
            have = int(ray.cluster_resources().get("GPU", 0))
            if have >= args.gpus:
                print(f"{have} GPUs in the cluster", flush=True)
                return 0
            if time.monotonic() >= deadline:
                print(f"{have} of {args.gpus} GPUs after {args.timeout:g} s; the request stays in force "
                      "(see `ray status`)", file=sys.stderr, flush=True)
                return 1
            time.sleep(10)
    finally:
        ray.shutdown()


if __name__ == "__main__":
    sys.exit(main())
