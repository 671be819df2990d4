"""`make demo`: start every stand-in, play each connector's demo against them, show what arrived where."""

import os
import shutil
import subprocess
import sys
import tempfile
import traceback

from tq_conn_sandbox.server import start_services
from tq_conn_sandbox.services import available as services
from tq_conn_sandbox.demos import available as demos


class DemoContext:
    """What a demo needs: the running stand-ins, a scratch folder, and a way to run installed commands."""

    def __init__(self, running, workdir):
        self.sandbox = running
        self.workdir = workdir
        self.bin = os.path.dirname(sys.executable)
        self.home = workdir     # the folder of the demo being played
        self.notes = {}         # what a demo's actions remember from one step to the next

    def url(self, name):
        return self.sandbox.url(name)

    def folder(self, name):
        path = os.path.join(self.workdir, name)
        os.makedirs(path, exist_ok=True)
        return path

    def sh(self, command, *args, env=None, check=True):
        """Run an installed command, print it and its output; return the CompletedProcess."""
        exe = os.path.join(self.bin, command)
        shown = " ".join([command, *map(str, args)])
        print(f"\n$ {shown}", flush=True)
        proc = subprocess.run([exe if os.path.exists(exe) else command, *map(str, args)], capture_output=True,
                              text=True, env={**os.environ, **(env or {})}, stdin=subprocess.DEVNULL, timeout=600)
        for line in (proc.stdout + proc.stderr).rstrip().splitlines():
            print(f"  {line}")
        print(f"  (exit {proc.returncode})", flush=True)
        if check and proc.returncode != 0:
            raise SystemExit(f"demo step failed: {shown}")
        return proc


def play(ctx, name, module):
    """Play the steps of a demo module in its own folder: say, set, run the command, show, put back."""
    ctx.home, ctx.notes = ctx.folder(name), {}
    base_env = getattr(module, "ENV", None) or {}
    for number, step in enumerate(module.STEPS):
        if step.say:
            print(("\n" if number else "") + step.say)
        for action in step.set:
            action(ctx)
        env = {**(base_env(ctx) if callable(base_env) else base_env), **(step.env or {})}
        args = [arg(ctx) if callable(arg) else arg.replace("{home}", ctx.home) for arg in step.args]
        ctx.sh(module.COMMAND, *args, env=env or None, check=step.check)
        for action in step.show + step.then:
            action(ctx)


def main():
    running = start_services(services().values())
    workdir = tempfile.mkdtemp(prefix="tq-conn-demo-")
    failed = []
    try:
        print("Sandbox stand-ins on loopback:")
        for name, service in running.services.items():
            print(f"  {name:<22} {service.url}")
        ctx = DemoContext(running, workdir)
        for name, module in demos():
            print(f"\n=== {getattr(module, 'TITLE', name)} ===", flush=True)
            try:
                play(ctx, name, module)
            except SystemExit as exc:
                print(f"  demo {name} failed: {exc}")
                failed.append(name)
            except Exception:  # one broken demo must not hide the others
                print(f"  demo {name} failed:\n{traceback.format_exc()}")
                failed.append(name)
        if not demos():
            print("\nNo connector demos installed yet.")
    finally:
        running.stop()
        shutil.rmtree(workdir, ignore_errors=True)
        print("\nSandbox stopped.")
    if failed:
        print(f"Failed demos: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
