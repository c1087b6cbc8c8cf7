"""Reads a log folder with TensorBoard's own code and prints what it found as JSON (for
spec/loggers_tensorboard_real_spec.lua).

  python tensorboard_read.py read LOGDIR    event files through EventAccumulator (the classic reader) and
                                            the hparams plugin's protobufs
  python tensorboard_read.py serve LOGDIR   starts `tensorboard --logdir LOGDIR` on a free loopback port,
                                            asks its HTTP API for runs, scalar tags and every series, stops it
"""
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request


def read(logdir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    out = {}
    for run in sorted(os.listdir(logdir)):
        path = os.path.join(logdir, run)
        if not os.path.isdir(path):
            continue
        ea = EventAccumulator(path, size_guidance={"scalars": 0, "tensors": 0, "images": 0})
        ea.Reload()
        tags = ea.Tags()
        scalars = {tag: [[e.wall_time, e.step, e.value] for e in ea.Scalars(tag)] for tag in tags["scalars"]}
        hparams = {}
        for tag, content in ea.PluginTagToContent("hparams").items():
            data = plugin_data_pb2.HParamsPluginData.FromString(content)
            kind = data.WhichOneof("data")
            if kind == "experiment":
                hparams["experiment"] = {
                    "hparams": sorted(h.name for h in data.experiment.hparam_infos),
                    "metrics": sorted(m.name.tag for m in data.experiment.metric_infos),
                }
            elif kind == "session_start_info":
                values = {}
                for name, v in data.session_start_info.hparams.items():
                    which = v.WhichOneof("kind")
                    values[name] = {"number_value": v.number_value, "string_value": v.string_value,
                                    "bool_value": v.bool_value}[which]
                hparams["session_start"] = values
            elif kind == "session_end_info":
                hparams["session_end"] = {"status": data.session_end_info.status}
        out[run] = {"scalars": scalars, "hparams": hparams, "images": tags.get("images", [])}
    return out


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read().decode())


def serve(logdir):
    port = free_port()
    exe = os.path.join(os.path.dirname(sys.executable), "tensorboard")
    proc = subprocess.Popen([exe, "--logdir", logdir, "--host", "127.0.0.1", "--port", str(port),
                             "--load_fast", "false", "--reload_interval", "1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        tags = None
        while time.time() < deadline:
            if proc.poll() is not None:
                raise SystemExit("tensorboard exited: " + proc.stderr.read().decode()[-2000:])
            try:
                tags = get_json(base + "/data/plugin/scalars/tags")
                if tags:  # the first load may still be under way
                    break
            except OSError:
                pass
            time.sleep(0.5)
        if not tags:
            raise SystemExit("tensorboard served no scalars within 60 s")
        series = {}
        for run, run_tags in tags.items():
            for tag in run_tags:
                q = urllib.parse.urlencode({"run": run, "tag": tag})
                series.setdefault(run, {})[tag] = get_json(base + "/data/plugin/scalars/scalars?" + q)
        return {"runs": sorted(get_json(base + "/data/runs")), "scalars": series}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


if __name__ == "__main__":
    import urllib.parse
    mode, logdir = sys.argv[1], sys.argv[2]
    print(json.dumps(read(logdir) if mode == "read" else serve(logdir)))
