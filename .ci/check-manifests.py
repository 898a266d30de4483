#!/usr/bin/env python3
"""Runs each service binary the way the rendered Kubernetes manifests run it
(container args, ConfigMap environment, secret-provided database URL) against
SQLite on loopback, and checks it becomes SERVING on grpc.health.v1, drains on
SIGTERM, and that each init container's command (the migrations) succeeds on
that database first. It also checks the connection budget: every pod the
HPAs allow, plus the rollout surge, with full pools, fits the PostgreSQL
connection limit the overlay assumes (ConfigMap postgres-budget).

Usage: check-manifests.py RENDERED.yaml TARGET_DIR
"""
import math
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time

import grpc
import yaml
from grpc_health.v1 import health_pb2, health_pb2_grpc

# An ES256 public key whose private key no one kept: enough for a verifier
# to start, useless for signing.
JWKS = ('{"keys": [{"kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": "check", '
        '"x": "dvZfonjWGa797ArEgM2DKjAqBFdPnYdTz4xqEwKfL3Q", "y": "UDIl_F9_5S-IFZeEoOCByPOjk7mhrcivFGtzqpAdmQw"}]}')


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def environment(container, config_maps, database_dir):
    env = {"PATH": os.environ.get("PATH", "")}
    for source in container.get("envFrom", []):
        env.update(config_maps[source["configMapRef"]["name"]])
    for var in container.get("env", []):
        if var["name"].endswith("_DATABASE_URL_FILE"):
            # The mounted Secret holds a PostgreSQL URL in a cluster; here, a
            # file of ours names a SQLite database.
            secret = os.path.join(database_dir, "url")
            with open(secret, "w") as f:
                f.write(f"sqlite://{database_dir}/db.sqlite?mode=rwc")
            env[var["name"]] = secret
        elif var["name"] == "AUTH_JWKS_FILE":
            # Public keys only; the private half was thrown away.
            secret = os.path.join(database_dir, "jwks.json")
            with open(secret, "w") as f:
                f.write(JWKS)
            env[var["name"]] = secret
        elif var["name"].endswith("_FILE"):
            # Any other mounted secret (a signing key, a token): a file of ours.
            secret = os.path.join(database_dir, var["name"].lower())
            with open(secret, "w") as f:
                f.write("check-manifests-secret")
            env[var["name"]] = secret
        elif "valueFrom" in var:
            # The downward API (pod name, uid, node…): any stand-in will do.
            env[var["name"]] = f'check-{var["name"].lower()}'
        else:
            # Kubernetes expands $(NAME) from the variables defined before.
            env[var["name"]] = re.sub(r"\$\((\w+)\)", lambda m: env.get(m.group(1), m.group(0)), var["value"])
    # Keep all traffic on this machine: no collector is running here.
    env["OTEL_EXPORTER_OTLP_ENDPOINT"] = f"http://127.0.0.1:{free_port()}"
    return env


def serving(port, deadline):
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    stub = health_pb2_grpc.HealthStub(channel)
    while time.time() < deadline:
        try:
            answer = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=1)
            if answer.status == health_pb2.HealthCheckResponse.SERVING:
                return True
        except grpc.RpcError:
            pass
        time.sleep(0.2)
    return False


# What each binary uses when its ConfigMap sets no pool size.
DEFAULT_POOLS = {"DB_MAX_CONNECTIONS": 16, "STREAM_DB_CONNECTIONS": 4}
# The migration lock is held on a connection of its own while a pod starts.
LOCK_CONNECTIONS = 1


def surge(deployment, replicas):
    """Extra pods a rolling update may add (Kubernetes' default is 25 %)."""
    value = (deployment["spec"].get("strategy", {}).get("rollingUpdate", {}) or {}).get("maxSurge", "25%")
    if isinstance(value, str) and value.endswith("%"):
        return math.ceil(replicas * int(value[:-1]) / 100)
    return int(value)


def connection_budget(documents, config_maps):
    budgets = [d for d in documents if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "postgres-budget"]
    if not budgets:
        print("connection budget: no ConfigMap postgres-budget states the PostgreSQL limit assumed")
        return 1
    limit = int(budgets[0]["data"]["max_connections"])
    reserved = int(budgets[0]["data"]["reserved_connections"])
    hpas = {d["spec"]["scaleTargetRef"]["name"]: d for d in documents if d["kind"] == "HorizontalPodAutoscaler"}
    total = 0
    for doc in documents:
        if doc["kind"] != "Deployment":
            continue
        name = doc["metadata"]["name"]
        container = doc["spec"]["template"]["spec"]["containers"][0]
        env = {}
        for source in container.get("envFrom", []):
            env.update(config_maps[source["configMapRef"]["name"]])
        prefix = name.upper() + "_"
        per_pod = LOCK_CONNECTIONS + sum(int(env.get(prefix + key, default)) for key, default in DEFAULT_POOLS.items())
        replicas = hpas[name]["spec"]["maxReplicas"] if name in hpas else doc["spec"].get("replicas", 1)
        pods = replicas + surge(doc, replicas)
        total += pods * per_pod
        print(f"connection budget: {name}: {pods} pods (HPA max {replicas} + surge) x {per_pod} connections = {pods * per_pod}")
    ok = total <= limit - reserved
    print(f"connection budget: {total} connections at most, against max_connections {limit} - {reserved} reserved: {'ok' if ok else 'OVER'}")
    return 0 if ok else 1


def main(rendered, target):
    documents = [d for d in yaml.safe_load_all(open(rendered)) if d]
    config_maps = {d["metadata"]["name"]: d.get("data", {}) for d in documents if d["kind"] == "ConfigMap"}
    failures = connection_budget(documents, config_maps)
    for doc in documents:
        if doc["kind"] != "Deployment":
            continue
        pod = doc["spec"]["template"]["spec"]
        container = pod["containers"][0]
        binary = os.path.join(target, container["image"].split("/")[-1].split(":")[0])
        with tempfile.TemporaryDirectory() as database_dir:
            env = environment(container, config_maps, database_dir)
            name = f'{doc["kind"]} {doc["metadata"]["name"]}'
            ok = True
            for init in pod.get("initContainers", []):
                init_binary = os.path.join(target, init["image"].split("/")[-1].split(":")[0])
                init_env = environment(init, config_maps, database_dir)
                done = subprocess.run([init_binary, *init["args"]], env=init_env, capture_output=True, timeout=60)
                print(f"{name}: init container {init['name']}: {' '.join(init['args'])} exited {done.returncode}")
                if done.returncode != 0:
                    print(done.stderr.decode()[-2000:])
                    ok = False
            if ok:
                port = container["ports"][0]["containerPort"]
                listen_key = next(k for k in env if k.endswith("_LISTEN"))
                port = free_port()
                env[listen_key] = f"127.0.0.1:{port}"
                process = subprocess.Popen([binary, *container["args"]], env=env,
                                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                up = serving(port, time.time() + 60)
                process.send_signal(signal.SIGTERM)
                try:
                    code = process.wait(timeout=40)
                except subprocess.TimeoutExpired:
                    process.kill()
                    code = "killed"
                ok = up and code == 0
                print(f"{name}: {' '.join(container['args'])} serving={up}, exit after SIGTERM={code}")
                if not ok:
                    print(process.stderr.read().decode()[-2000:])
            if not os.path.exists(os.path.join(database_dir, "db.sqlite")):
                print(f"{name}: did not use the database URL from the mounted secret file")
                ok = False
            failures += 0 if ok else 1
    return failures


if __name__ == "__main__":
    sys.exit(1 if main(sys.argv[1], sys.argv[2]) else 0)
