#!/usr/bin/env bash
# Offline validation of the deployment files. Fails (exit 1) on the first
# section with an error, after printing every problem of that section.
#
#   bash scripts/validate-deploy.sh
#
# Checks (no Docker engine and no cluster needed):
#   k8s/          kustomization.yaml lists exactly the manifests in k8s/ and
#                 they exist; each manifest, and the `kubectl kustomize`
#                 output when kubectl is installed, passes kubernetes-validate
#                 --strict against Kubernetes $K8S_VERSION; cross-references
#                 (selectors, probes, drain timing, security context, ingress
#                 timeouts, HPA/PDB targets) are consistent.
#   compose       docker-compose.yml passes the compose-spec JSON schema
#                 (check-jsonschema's vendored copy); mounted files and the
#                 Dockerfile exist; depends_on, nginx upstreams, Prometheus
#                 targets and OTLP endpoints name real services and ports.
#                 `docker compose config -q` too, when the compose plugin is
#                 installed.
#   Dockerfile    parses (BuildKit's parser); multi-stage, `cargo build
#                 --release --locked`, non-root USER, EXPOSE 8080, HEALTHCHECK
#                 on /healthz; .dockerignore keeps target/ out.
#   nginx         deploy/nginx/nginx.conf with lobbyd-proxy.conf, upstream
#                 hosts swapped for loopback, passes `nginx -t`; /ws has the
#                 upgrade headers and hour-long timeouts.
#   Prometheus    `promtool check config deploy/prometheus.yml`.
#   Grafana       provisioning YAML and dashboard JSON parse; every metric of
#                 the README table has a panel; every panel query is valid
#                 PromQL (`promtool check rules`); data source uids match.
#   Collector     every pipeline component is defined; ports match compose
#                 and prometheus.yml.
#
# Needs python3 (>= 3.9), nginx and promtool (`bash .ci/run` installs both
# from Debian). Python tools go into a venv, created once:
# $LOBBYD_VALIDATE_VENV, default ~/.cache/lobbyd/validate-deploy-venv.
set -euo pipefail
cd "$(dirname "$0")/.."

K8S_VERSION=1.30.0
REQUIREMENTS=(
  "kubernetes-validate==1.37.0"
  "check-jsonschema==0.39.0"
  "dockerfile==3.4.0"
  "PyYAML>=6,<7"
)

cache_home="${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}"
VENV="${LOBBYD_VALIDATE_VENV:-$cache_home/lobbyd/validate-deploy-venv}"
stamp="$VENV/.lobbyd-requirements"
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "${REQUIREMENTS[*]}" ]; then
  echo "validate-deploy: preparing Python tools in $VENV"
  rm -rf "$VENV"
  mkdir -p "$(dirname "$VENV")"
  python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "${REQUIREMENTS[@]}" </dev/null
  echo "${REQUIREMENTS[*]}" >"$stamp"
fi
PY="$VENV/bin/python"

find_tool() {
  local name=$1
  if command -v "$name" >/dev/null 2>&1; then command -v "$name"; return; fi
  for d in /usr/sbin /usr/local/sbin /sbin /usr/bin; do
    if [ -x "$d/$name" ]; then echo "$d/$name"; return; fi
  done
  return 1
}
NGINX=$(find_tool nginx) || { echo "validate-deploy: nginx not found (apt-get install nginx-light)" >&2; exit 1; }
PROMTOOL=$(find_tool promtool) || { echo "validate-deploy: promtool not found (apt-get install prometheus)" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

failed=0
section() { echo "validate-deploy: $1"; }
fail() { echo "validate-deploy: FAILED: $1" >&2; failed=1; }

# kubernetes-validate only warns about a kind/apiVersion it has no schema
# for (meant for CRDs). This base has no CRDs, so an unknown kind or a
# removed apiVersion (policy/v1beta1, ...) is an error here too.
kvalidate() {
  local out rc=0
  out=$("$VENV/bin/kubernetes-validate" --strict --quiet -k "$K8S_VERSION" "$@" 2>&1) || rc=$?
  [ -z "$out" ] || echo "$out" >&2
  if [ "$rc" -ne 0 ] || grep -q "WARN" <<<"$out"; then return 1; fi
}

# ---------------------------------------------------------------------------
section "k8s/ against Kubernetes $K8S_VERSION (kubernetes-validate --strict)"
# The files kustomization.yaml lists, after checking the list itself.
if ! manifests=$("$PY" - <<'PY'
import pathlib, sys, yaml
root = pathlib.Path("k8s")
kust = yaml.safe_load((root / "kustomization.yaml").read_text())
errors = []
if not isinstance(kust, dict) or kust.get("kind") != "Kustomization":
    errors.append("k8s/kustomization.yaml: not a Kustomization")
    kust = {}
listed = kust.get("resources") or []
for key in ("patches", "patchesStrategicMerge", "components", "bases"):
    for item in kust.get(key) or []:
        path = item.get("path") if isinstance(item, dict) else item
        if isinstance(path, str) and not (root / path).exists():
            errors.append(f"k8s/kustomization.yaml: {key} entry {path} does not exist")
seen = set()
for r in listed:
    if not isinstance(r, str):
        errors.append(f"k8s/kustomization.yaml: resource entry {r!r} is not a path")
        continue
    if r in seen:
        errors.append(f"k8s/kustomization.yaml: {r} listed twice")
    seen.add(r)
    if not (root / r).is_file():
        errors.append(f"k8s/kustomization.yaml: listed resource {r} does not exist")
on_disk = {p.name for p in root.glob("*.yaml")} | {p.name for p in root.glob("*.yml")}
for name in sorted(on_disk - {"kustomization.yaml"} - seen):
    errors.append(f"k8s/{name} is not listed in k8s/kustomization.yaml resources")
if errors:
    print("\n".join(errors), file=sys.stderr)
    sys.exit(1)
print("\n".join(f"k8s/{r}" for r in listed))
PY
); then
  fail "k8s/kustomization.yaml"
  manifests=""
fi
if [ -n "$manifests" ]; then
  # shellcheck disable=SC2086
  kvalidate $manifests || fail "k8s manifests against Kubernetes $K8S_VERSION"
fi
if command -v kubectl >/dev/null 2>&1; then
  echo "validate-deploy: kubectl kustomize k8s/ output, same check"
  if kubectl kustomize k8s/ >"$work/rendered.yaml" 2>"$work/kustomize.err"; then
    kvalidate "$work/rendered.yaml" || fail "kubectl kustomize k8s/ output against Kubernetes $K8S_VERSION"
  else
    cat "$work/kustomize.err" >&2
    fail "kubectl kustomize k8s/"
  fi
else
  echo "validate-deploy: (kubectl not installed: the rendered kustomize output is not checked separately)"
fi

section "k8s/ cross-references"
"$PY" - <<'PY' || fail "k8s cross-references"
import pathlib, sys, yaml
root = pathlib.Path("k8s")
kust = yaml.safe_load((root / "kustomization.yaml").read_text()) or {}
docs = []
for r in kust.get("resources") or []:
    p = root / str(r)
    if p.is_file():
        docs += [(str(p), d) for d in yaml.safe_load_all(p.read_text()) if d]
errors = []
def err(msg): errors.append(msg)
by_kind = {}
for path, d in docs:
    if not isinstance(d, dict):
        err(f"{path}: a document is not a mapping"); continue
    by_kind.setdefault(d.get("kind"), []).append((path, d))

def one(kind, name):
    for path, d in by_kind.get(kind, []):
        if (d.get("metadata") or {}).get("name") == name:
            return path, d
    return None, None

def matches(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())

for kind in ("Namespace", "ConfigMap", "Deployment", "Service", "HorizontalPodAutoscaler",
             "PodDisruptionBudget", "Ingress", "StatefulSet"):
    if kind not in by_kind:
        err(f"k8s/: no {kind}")

dpath, dep = one("Deployment", "lobbyd")
if dep is None:
    err("k8s/: no Deployment named lobbyd")
else:
    spec = dep["spec"]; pod = spec["template"]["spec"]
    labels = spec["template"]["metadata"].get("labels") or {}
    if not matches(spec["selector"].get("matchLabels") or {}, labels):
        err(f"{dpath}: selector does not match the pod labels")
    if spec.get("replicas") != 3:
        err(f"{dpath}: replicas must be 3")
    cs = [c for c in pod["containers"] if c["name"] == "lobbyd"]
    if not cs:
        err(f"{dpath}: no container named lobbyd")
    else:
        c = cs[0]
        ports = {p.get("name"): p["containerPort"] for p in c.get("ports") or []}
        def probe(kind, path):
            pr = c.get(kind) or {}
            g = pr.get("httpGet") or {}
            if g.get("path") != path:
                err(f"{dpath}: {kind} must GET {path}")
            if g.get("port") not in ports and g.get("port") not in ports.values():
                err(f"{dpath}: {kind} port {g.get('port')} is not a container port")
        probe("readinessProbe", "/readyz")
        probe("livenessProbe", "/healthz")
        env = {e["name"]: e.get("value") for e in c.get("env") or []}
        for k in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_SERVICE_NAME", "LOBBYD_NODE_ID"):
            if not env.get(k):
                err(f"{dpath}: env {k} missing")
        cm_names = [s["configMapRef"]["name"] for s in c.get("envFrom") or [] if "configMapRef" in s]
        cm = {}
        for n in cm_names:
            cpath, cmd = one("ConfigMap", n)
            if cmd is None:
                err(f"{dpath}: envFrom ConfigMap {n} is not in k8s/")
            else:
                cm.update(cmd.get("data") or {})
        if not cm.get("LOBBYD_REDIS_URL", "").startswith(("redis://", "rediss://")):
            err("ConfigMap: LOBBYD_REDIS_URL must be a redis:// or rediss:// URL")
        listen = cm.get("LOBBYD_LISTEN", "")
        if not listen.startswith("0.0.0.0:") or int(listen.rsplit(":", 1)[1]) not in ports.values():
            err(f"ConfigMap: LOBBYD_LISTEN {listen!r} must listen on 0.0.0.0 at the container port")
        # Drain timing: preStop sleep + drain must fit the grace period with margin.
        try:
            drain_s = int(cm["LOBBYD_SHUTDOWN_DRAIN_MS"]) / 1000
        except (KeyError, ValueError):
            err("ConfigMap: LOBBYD_SHUTDOWN_DRAIN_MS missing or not a number"); drain_s = 0
        pre = (((c.get("lifecycle") or {}).get("preStop") or {}))
        cmd = (pre.get("exec") or {}).get("command") or []
        pre_s = (pre.get("sleep") or {}).get("seconds")
        if pre_s is None and len(cmd) == 2 and cmd[0] == "sleep":
            pre_s = float(cmd[1])
        if pre_s is None:
            err(f"{dpath}: preStop must sleep (exec sleep N or sleep action)"); pre_s = 0
        grace = pod.get("terminationGracePeriodSeconds", 30)
        # + 10 s: up to 5 s for closing connections, presence removal, flush.
        if grace < pre_s + drain_s + 10:
            err(f"{dpath}: terminationGracePeriodSeconds {grace} < preStop {pre_s} s + drain {drain_s} s + 10 s for closing")
        res = c.get("resources") or {}
        for k in ("requests", "limits"):
            for r in ("cpu", "memory"):
                if r not in (res.get(k) or {}):
                    err(f"{dpath}: resources.{k}.{r} missing")
        sc = c.get("securityContext") or {}
        psc = pod.get("securityContext") or {}
        if sc.get("allowPrivilegeEscalation") is not False:
            err(f"{dpath}: allowPrivilegeEscalation must be false")
        if sc.get("readOnlyRootFilesystem") is not True:
            err(f"{dpath}: readOnlyRootFilesystem must be true")
        if not (sc.get("runAsNonRoot") or psc.get("runAsNonRoot")):
            err(f"{dpath}: runAsNonRoot must be true")
        if "ALL" not in ((sc.get("capabilities") or {}).get("drop") or []):
            err(f"{dpath}: capabilities must drop ALL")
    for path, svc in by_kind.get("Service", []):
        if svc["metadata"]["name"] == "lobbyd":
            if not matches(svc["spec"].get("selector") or {}, labels):
                err(f"{path}: Service lobbyd selects no lobbyd pod")
            for p in svc["spec"]["ports"]:
                t = p.get("targetPort")
                if t not in ports and t not in ports.values():
                    err(f"{path}: targetPort {t} is not a container port")
    for path, pdb in by_kind.get("PodDisruptionBudget", []):
        if not matches(pdb["spec"]["selector"].get("matchLabels") or {}, labels):
            err(f"{path}: PodDisruptionBudget selects no lobbyd pod")
    for path, hpa in by_kind.get("HorizontalPodAutoscaler", []):
        ref = hpa["spec"]["scaleTargetRef"]
        if (ref.get("kind"), ref.get("name")) != ("Deployment", "lobbyd"):
            err(f"{path}: HPA does not target Deployment lobbyd")
        if hpa["spec"].get("minReplicas", 1) > hpa["spec"]["maxReplicas"]:
            err(f"{path}: minReplicas > maxReplicas")

for path, ing in by_kind.get("Ingress", []):
    ann = ing["metadata"].get("annotations") or {}
    for k in ("proxy-read-timeout", "proxy-send-timeout"):
        v = ann.get(f"nginx.ingress.kubernetes.io/{k}")
        if v is None or int(v) < 3600:
            err(f"{path}: annotation nginx.ingress.kubernetes.io/{k} must be at least 3600")
    for rule in ing["spec"].get("rules") or []:
        for p in (rule.get("http") or {}).get("paths") or []:
            name = p["backend"]["service"]["name"]
            spath, svc = one("Service", name)
            if svc is None:
                err(f"{path}: backend Service {name} is not in k8s/")
            else:
                port = p["backend"]["service"]["port"]
                names = {sp.get("name") for sp in svc["spec"]["ports"]}
                nums = {sp.get("port") for sp in svc["spec"]["ports"]}
                if port.get("name") not in names and port.get("number") not in nums:
                    err(f"{path}: backend port {port} is not a port of Service {name}")

for path, sts in by_kind.get("StatefulSet", []):
    sname = sts["spec"].get("serviceName")
    if one("Service", sname)[1] is None:
        err(f"{path}: serviceName {sname} is not a Service in k8s/")

if errors:
    print("\n".join(errors), file=sys.stderr)
    sys.exit(1)
print(f"validate-deploy: {len(docs)} k8s objects consistent")
PY

# ---------------------------------------------------------------------------
section "docker-compose.yml against the compose-spec schema"
"$VENV/bin/check-jsonschema" --builtin-schema vendor.compose-spec docker-compose.yml || fail "docker-compose.yml schema"
if docker compose version >/dev/null 2>&1; then
  docker compose -f docker-compose.yml config -q || fail "docker compose config"
else
  echo "validate-deploy: (docker compose plugin not installed: schema check only)"
fi

section "docker-compose.yml and deploy/ cross-references"
"$PY" - <<'PY' || fail "compose cross-references"
import pathlib, re, sys, yaml
from urllib.parse import urlparse
errors = []
def err(msg): errors.append(msg)
compose = yaml.safe_load(pathlib.Path("docker-compose.yml").read_text())
services = compose.get("services") or {}

for name, s in services.items():
    b = s.get("build")
    if b:
        ctx = pathlib.Path(b.get("context", ".") if isinstance(b, dict) else b)
        df = ctx / (b.get("dockerfile", "Dockerfile") if isinstance(b, dict) else "Dockerfile")
        if not df.is_file():
            err(f"service {name}: Dockerfile {df} does not exist")
    for v in s.get("volumes") or []:
        src = v.split(":")[0] if isinstance(v, str) else v.get("source", "")
        if src.startswith("./") and not pathlib.Path(src).exists():
            err(f"service {name}: mounted {src} does not exist")
        if isinstance(v, str) and not src.startswith(("./", "/")) and src not in (compose.get("volumes") or {}):
            err(f"service {name}: named volume {src} is not declared")
    deps = s.get("depends_on") or []
    for d in (deps if isinstance(deps, list) else deps.keys()):
        if d not in services:
            err(f"service {name}: depends_on unknown service {d}")

def env(s):
    e = s.get("environment") or {}
    if isinstance(e, list):
        e = dict(x.split("=", 1) for x in e)
    return e

lobbyds = {n: s for n, s in services.items() if (s.get("build") or "lobbyd" in str(s.get("image", ""))) and n.startswith("lobbyd")}
if len(lobbyds) != 3:
    err(f"expected three lobbyd replicas, found {sorted(lobbyds)}")
ids = set()
for n, s in lobbyds.items():
    e = env(s)
    ids.add(e.get("LOBBYD_NODE_ID"))
    for k in ("LOBBYD_REDIS_URL", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_SERVICE_NAME"):
        if not e.get(k):
            err(f"service {n}: {k} not set")
    for k in ("LOBBYD_REDIS_URL", "OTEL_EXPORTER_OTLP_ENDPOINT"):
        host = urlparse(str(e.get(k, ""))).hostname
        if host and host not in services:
            err(f"service {n}: {k} points at {host}, not a compose service")
if None in ids or len(ids) != len(lobbyds):
    err("each lobbyd replica needs its own LOBBYD_NODE_ID")

def seconds(v):
    m = re.fullmatch(r"(\d+)(ms|s|m)?", str(v))
    return int(m.group(1)) * {"ms": 0.001, "s": 1, None: 1, "m": 60}[m.group(2)] if m else 0
for n, s in lobbyds.items():
    drain = int(env(s).get("LOBBYD_SHUTDOWN_DRAIN_MS", 1000)) / 1000
    if seconds(s.get("stop_grace_period", "10s")) < drain + 5:
        err(f"service {n}: stop_grace_period must cover the drain ({drain} s) plus 5 s for closing")

redis = services.get("redis") or {}
if "--appendonly" not in " ".join(map(str, redis.get("command") or [])):
    err("service redis: must run with --appendonly yes")

# nginx upstream servers are the lobbyd replicas.
conf = pathlib.Path("deploy/nginx/nginx.conf").read_text()
m = re.search(r"upstream\s+lobbyd\s*\{(.*?)\}", conf, re.S)
ups = re.findall(r"^\s*server\s+([^\s;]+)", m.group(1), re.M) if m else []
if sorted(u.split(":")[0] for u in ups) != sorted(lobbyds):
    err(f"deploy/nginx/nginx.conf: upstream servers {ups} are not the lobbyd services {sorted(lobbyds)}")
for u in ups:
    if not u.endswith(":8080"):
        err(f"deploy/nginx/nginx.conf: upstream {u} must use port 8080")
if "include lobbyd-proxy.conf;" not in conf:
    err("deploy/nginx/nginx.conf: must include lobbyd-proxy.conf")

# Prometheus scrapes every replica and the collector.
prom = yaml.safe_load(pathlib.Path("deploy/prometheus.yml").read_text())
targets = {}
for job in prom.get("scrape_configs") or []:
    for sc in job.get("static_configs") or []:
        targets.setdefault(job["job_name"], []).extend(sc.get("targets") or [])
for t in sum(targets.values(), []):
    host = t.split(":")[0]
    if host != "localhost" and host not in services:
        err(f"deploy/prometheus.yml: target {t} is not a compose service")
if sorted(t.split(":")[0] for t in targets.get("lobbyd", [])) != sorted(lobbyds):
    err("deploy/prometheus.yml: job lobbyd must scrape every lobbyd replica")

# Collector: pipelines use defined components; ports line up.
otel = yaml.safe_load(pathlib.Path("deploy/otel-collector.yaml").read_text())
for pname, p in ((otel.get("service") or {}).get("pipelines") or {}).items():
    for kind in ("receivers", "processors", "exporters"):
        for comp in p.get(kind) or []:
            if comp not in (otel.get(kind) or {}):
                err(f"deploy/otel-collector.yaml: pipeline {pname} uses undefined {kind[:-1]} {comp}")
    if not p.get("receivers") or not p.get("exporters"):
        err(f"deploy/otel-collector.yaml: pipeline {pname} needs receivers and exporters")
pipes = (otel.get("service") or {}).get("pipelines") or {}
if "traces" not in pipes or "metrics" not in pipes:
    err("deploy/otel-collector.yaml: needs traces and metrics pipelines")
for ext in (otel.get("service") or {}).get("extensions") or []:
    if ext not in (otel.get("extensions") or {}):
        err(f"deploy/otel-collector.yaml: undefined extension {ext}")
http_ep = (((otel.get("receivers") or {}).get("otlp") or {}).get("protocols") or {}).get("http", {}) or {}
otlp_port = str(http_ep.get("endpoint", "")).rsplit(":", 1)[-1]
for n, s in lobbyds.items():
    ep = urlparse(str(env(s).get("OTEL_EXPORTER_OTLP_ENDPOINT", "")))
    if str(ep.port) != otlp_port:
        err(f"service {n}: OTLP endpoint port {ep.port} is not the collector's OTLP/HTTP port {otlp_port}")
prom_ep = str(((otel.get("exporters") or {}).get("prometheus") or {}).get("endpoint", "")).rsplit(":", 1)[-1]
if [t for t in targets.get("otel-collector", [])] != [f"otel-collector:{prom_ep}"]:
    err(f"deploy/prometheus.yml: job otel-collector must scrape otel-collector:{prom_ep}")
for name, exp in (otel.get("exporters") or {}).items():
    if name.startswith("otlp"):
        host = str(exp.get("endpoint", "")).split("://")[-1].split(":")[0]
        if host not in services:
            err(f"deploy/otel-collector.yaml: exporter {name} endpoint host {host} is not a compose service")

# Grafana provisioning matches the compose mounts.
graf = services.get("grafana") or {}
mounts = {v.split(":")[1]: v.split(":")[0] for v in graf.get("volumes") or [] if isinstance(v, str) and v.startswith("./")}
ds = yaml.safe_load(pathlib.Path("deploy/grafana/provisioning/datasources/datasources.yaml").read_text())
ds_uids = {d.get("uid") for d in ds.get("datasources") or []}
for d in ds.get("datasources") or []:
    host = urlparse(d.get("url", "")).hostname
    if host not in services:
        err(f"grafana datasource {d.get('name')}: {host} is not a compose service")
prov = yaml.safe_load(pathlib.Path("deploy/grafana/provisioning/dashboards/dashboards.yaml").read_text())
for p in prov.get("providers") or []:
    path = (p.get("options") or {}).get("path")
    if path not in mounts or not pathlib.Path(mounts[path]).is_dir():
        err(f"grafana dashboard provider path {path} is not a mounted deploy/ directory")
if mounts.get("/etc/grafana/provisioning") != "./deploy/grafana/provisioning":
    err("grafana: deploy/grafana/provisioning must be mounted at /etc/grafana/provisioning")

if errors:
    print("\n".join(errors), file=sys.stderr)
    sys.exit(1)
print("validate-deploy: compose services, nginx upstreams, Prometheus targets, collector and Grafana provisioning agree")
PY

# ---------------------------------------------------------------------------
section "deploy/Dockerfile and .dockerignore"
"$PY" - <<'PY' || fail "deploy/Dockerfile"
import pathlib, sys, dockerfile
errors = []
KNOWN = {"FROM", "RUN", "CMD", "LABEL", "MAINTAINER", "EXPOSE", "ENV", "ADD", "COPY", "ENTRYPOINT",
         "VOLUME", "USER", "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL", "HEALTHCHECK", "SHELL"}
try:
    cmds = dockerfile.parse_file("deploy/Dockerfile")
except dockerfile.GoParseError as e:
    print(f"deploy/Dockerfile: {e}", file=sys.stderr); sys.exit(1)
for c in cmds:
    if c.cmd.upper() not in KNOWN:
        errors.append(f"deploy/Dockerfile:{c.start_line}: unknown instruction {c.cmd}")
stages = [i for i, c in enumerate(cmds) if c.cmd.upper() == "FROM"]
if len(stages) < 2:
    errors.append("deploy/Dockerfile: must be multi-stage")
final = cmds[stages[-1]:] if stages else []
if not any(c.cmd.upper() == "RUN" and "cargo build --release --locked" in " ".join(c.value) for c in cmds):
    errors.append("deploy/Dockerfile: no `cargo build --release --locked`")
if not any(c.cmd.upper() == "COPY" and any(f.startswith("--from=") for f in c.flags) for c in final):
    errors.append("deploy/Dockerfile: the final stage must copy the binary from the build stage")
users = [c.value[0] for c in final if c.cmd.upper() == "USER"]
if not users or users[-1].split(":")[0] in ("0", "root"):
    errors.append("deploy/Dockerfile: the final stage must set a non-root USER")
if not any(c.cmd.upper() == "EXPOSE" and "8080" in [v.split("/")[0] for v in c.value] for c in final):
    errors.append("deploy/Dockerfile: EXPOSE 8080 missing")
hc = [c for c in final if c.cmd.upper() == "HEALTHCHECK"]
if not hc or "/healthz" not in " ".join(hc[-1].value):
    errors.append("deploy/Dockerfile: HEALTHCHECK on /healthz missing")
env = {}
for c in final:
    if c.cmd.upper() == "ENV":
        v = list(c.value)
        env.update(dict(zip(v[0::2], v[1::2])))
if env.get("LOBBYD_LISTEN") != "0.0.0.0:8080":
    errors.append("deploy/Dockerfile: ENV LOBBYD_LISTEN=0.0.0.0:8080 missing")
ignore = pathlib.Path(".dockerignore")
lines = [l.strip() for l in ignore.read_text().splitlines()] if ignore.is_file() else []
for need in ("target/", "node_modules/"):
    if need not in lines and need.rstrip("/") not in lines:
        errors.append(f".dockerignore must exclude {need}")
if errors:
    print("\n".join(errors), file=sys.stderr); sys.exit(1)
print(f"validate-deploy: Dockerfile: {len(stages)} stages, final USER {users[-1]}")
PY

# ---------------------------------------------------------------------------
section "deploy/nginx with nginx -t ($NGINX)"
mkdir -p "$work/nginx"
cp deploy/nginx/lobbyd-proxy.conf "$work/nginx/" || fail "deploy/nginx/lobbyd-proxy.conf missing"
# Upstream hosts only resolve inside compose: swap them for loopback ports.
# Logs, pid and temp paths go to the temp dir.
sed -E \
  -e 's#^([[:space:]]*server[[:space:]]+)lobbyd-([0-9]+):8080#\1127.0.0.1:1808\2#' \
  -e "s#^([[:space:]]*error_log[[:space:]]+)[^[:space:];]+#\1$work/nginx/error.log#" \
  -e "s#^([[:space:]]*access_log[[:space:]]+)[^[:space:];]+#\1$work/nginx/access.log#" \
  -e "s#^(http[[:space:]]*\\{)#\1\n    client_body_temp_path $work/nginx/body; proxy_temp_path $work/nginx/proxy; fastcgi_temp_path $work/nginx/fastcgi; uwsgi_temp_path $work/nginx/uwsgi; scgi_temp_path $work/nginx/scgi;#" \
  deploy/nginx/nginx.conf >"$work/nginx/nginx.conf"
if grep -q 'lobbyd-[0-9]:8080' "$work/nginx/nginx.conf"; then
  fail "deploy/nginx/nginx.conf: could not swap the upstream hosts for the check"
fi
"$NGINX" -t -q -p "$work/nginx/" -c "$work/nginx/nginx.conf" -e "$work/nginx/error.log" \
  -g "pid $work/nginx/nginx.pid;" || fail "nginx -t on deploy/nginx/nginx.conf"
"$PY" - <<'PY' || fail "deploy/nginx/lobbyd-proxy.conf"
import pathlib, re, sys
text = pathlib.Path("deploy/nginx/lobbyd-proxy.conf").read_text()
text = re.sub(r"#.*", "", text)
m = re.search(r"location\s+=?\s*/ws\s*\{(.*?)\}", text, re.S)
errors = []
if not m:
    errors.append("deploy/nginx/lobbyd-proxy.conf: no location for /ws")
else:
    ws = m.group(1)
    def has(pattern, what):
        if not re.search(pattern, ws):
            errors.append(f"deploy/nginx/lobbyd-proxy.conf /ws: {what}")
    has(r"proxy_pass\s+http://lobbyd\s*;", "must proxy_pass http://lobbyd")
    has(r"proxy_http_version\s+1\.1\s*;", "needs proxy_http_version 1.1")
    has(r"proxy_set_header\s+Upgrade\s+\$http_upgrade\s*;", "needs proxy_set_header Upgrade $http_upgrade")
    has(r"proxy_set_header\s+Connection\s+(\"upgrade\"|upgrade|\$connection_upgrade)\s*;", "needs proxy_set_header Connection upgrade")
    for d in ("proxy_read_timeout", "proxy_send_timeout"):
        t = re.search(d + r"\s+(\d+)(s|m|h)?\s*;", ws)
        secs = int(t.group(1)) * {"s": 1, None: 1, "m": 60, "h": 3600}[t.group(2)] if t else 0
        if secs < 3600:
            errors.append(f"deploy/nginx/lobbyd-proxy.conf /ws: {d} must be at least 3600s")
for path in ("/healthz", "/readyz", "/metrics", "/"):
    if not re.search(r"location\s+=?\s*" + re.escape(path) + r"\s*\{[^}]*proxy_pass\s+http://lobbyd", text):
        errors.append(f"deploy/nginx/lobbyd-proxy.conf: {path} is not proxied to lobbyd")
if errors:
    print("\n".join(errors), file=sys.stderr); sys.exit(1)
PY

# ---------------------------------------------------------------------------
section "deploy/prometheus.yml with promtool ($PROMTOOL)"
"$PROMTOOL" check config deploy/prometheus.yml >"$work/promtool.out" 2>&1 || { cat "$work/promtool.out" >&2; fail "promtool check config"; }

section "deploy/grafana dashboard"
# Every panel query, with the dashboard variables filled in, becomes a
# recording rule so that promtool parses it as PromQL.
"$PY" - "$work/dashboard-rules.yml" <<'PY' || fail "deploy/grafana/dashboards/lobbyd.json"
import json, pathlib, sys, yaml
METRICS = ["lobbyd_connections_open", "lobbyd_users_logged_in", "lobbyd_requests_total",
           "lobbyd_broadcast_deliveries_total", "lobbyd_fanout_latency_seconds",
           "lobbyd_redis_command_latency_seconds", "lobbyd_pubsub_reconnects_total",
           "lobbyd_slow_consumer_disconnects_total", "lobbyd_lobby_subscriptions"]
errors = []
ds = yaml.safe_load(pathlib.Path("deploy/grafana/provisioning/datasources/datasources.yaml").read_text())
uids = {d["uid"] for d in ds["datasources"]}
dashboards = sorted(pathlib.Path("deploy/grafana/dashboards").glob("*.json"))
if not dashboards:
    errors.append("deploy/grafana/dashboards: no dashboard JSON")
rules, exprs = [], []
for f in dashboards:
    try:
        d = json.loads(f.read_text())
    except json.JSONDecodeError as e:
        errors.append(f"{f}: {e}"); continue
    if not d.get("uid") or not d.get("title"):
        errors.append(f"{f}: uid and title are required")
    variables = {v["name"]: (v.get("current") or {}).get("value", "x") for v in (d.get("templating") or {}).get("list") or []}
    panels = list(d.get("panels") or [])
    for p in list(panels):
        panels += p.get("panels") or []
    ids = [p.get("id") for p in panels]
    if len(ids) != len(set(ids)):
        errors.append(f"{f}: panel ids are not unique")
    for p in panels:
        if p.get("type") == "row":
            continue
        for t in p.get("targets") or []:
            uid = (t.get("datasource") or p.get("datasource") or {}).get("uid")
            if uid not in uids:
                errors.append(f"{f}: panel {p.get('title')!r} uses data source uid {uid!r}, not provisioned")
            expr = t.get("expr")
            if not expr:
                errors.append(f"{f}: panel {p.get('title')!r} has a target without expr"); continue
            exprs.append(expr)
            e = expr.replace("$__rate_interval", "5m").replace("$__interval", "1m").replace("$__range", "1h")
            for name, value in variables.items():
                e = e.replace("$" + name, str(value))
            rules.append({"record": f"dashboard:panel_{len(rules)}", "expr": e})
for m in METRICS:
    if not any(m in e for e in exprs):
        errors.append(f"dashboards: no panel shows {m}")
yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}, open(sys.argv[1], "w"))
if errors:
    print("\n".join(errors), file=sys.stderr); sys.exit(1)
print(f"validate-deploy: {len(dashboards)} dashboard(s), {len(rules)} queries, all {len(METRICS)} metrics shown")
PY
if [ -s "$work/dashboard-rules.yml" ]; then
  "$PROMTOOL" check rules "$work/dashboard-rules.yml" >"$work/rules.out" 2>&1 || { cat "$work/rules.out" >&2; fail "dashboard queries are not valid PromQL"; }
fi

# ---------------------------------------------------------------------------
if [ "$failed" -ne 0 ]; then
  echo "validate-deploy: deployment files are broken (see above)" >&2
  exit 1
fi
echo "validate-deploy: all deployment checks passed"
