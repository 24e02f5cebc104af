#!/usr/bin/env python3
"""Offline checks of Kubernetes manifests (deploy/kubernetes, docs/kubernetes.md).

No cluster and no kubectl here, so this checks what the API server would
refuse and what would leave the pods broken, as far as the files show it:

- every file parses as YAML; every object has apiVersion, kind and a valid
  metadata.name, a kind this checker knows with the apiVersion it needs, and
  a namespace that one of the files creates (for namespaced kinds);
- workloads: a selector that matches the template's labels, containers with
  a name and an image, ports in range with unique names, probes on declared
  ports (gRPC probes on a numeric containerPort), every $(VAR) in args and
  command defined in env, Downward API references to existing containers and
  to limits that are set, volume mounts of declared volumes, ConfigMaps and
  PersistentVolumeClaims that the files define, a StatefulSet's serviceName
  a headless Service;
- Services: ports, and a selector that selects a workload which declares
  every named targetPort;
- a ConfigMap's nodes.toml: valid TOML with each node's keys, its addresses
  on ports that the master's Service exposes.

Usage: check_manifests.py FILE.yaml...   (exit 1 with one line per problem)
       check_manifests.py --self-test DIR MANIFESTS...
         also runs every DIR/bad_*.yaml in place of the manifest its
         "# replaces: NAME" line names and expects each error its
         "# expect: TEXT" lines name: the checks can fail.
"""
import re
import sys
import tomllib

import yaml

KINDS = {  # kind -> (apiVersion, namespaced)
    "Namespace": ("v1", False),
    "ConfigMap": ("v1", True),
    "Secret": ("v1", True),
    "Service": ("v1", True),
    "PersistentVolumeClaim": ("v1", True),
    "ServiceAccount": ("v1", True),
    "Deployment": ("apps/v1", True),
    "StatefulSet": ("apps/v1", True),
    "DaemonSet": ("apps/v1", True),
}
WORKLOADS = ("Deployment", "StatefulSet", "DaemonSet")
NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
FIELD_PATHS = {"metadata.name", "metadata.namespace", "metadata.uid", "spec.nodeName", "spec.serviceAccountName",
               "status.hostIP", "status.podIP", "status.podIPs"}
RESOURCES = {"limits.cpu", "limits.memory", "limits.ephemeral-storage", "requests.cpu", "requests.memory",
             "requests.ephemeral-storage"}
VAR = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


class Checker:
    def __init__(self):
        self.errors = []
        self.objects = []  # (file, object)

    def error(self, where, message):
        self.errors.append(f"{where}: {message}")

    def load(self, path):
        try:
            with open(path, encoding="utf-8") as f:
                documents = list(yaml.safe_load_all(f))
        except (OSError, yaml.YAMLError) as e:
            self.error(path, f"does not parse: {e}")
            return
        for i, obj in enumerate(documents):
            if obj is None:
                continue
            if not isinstance(obj, dict):
                self.error(f"{path} document {i + 1}", "is not a mapping")
                continue
            self.objects.append((path, obj))

    def of_kind(self, *kinds):
        return [(f, o) for f, o in self.objects if o.get("kind") in kinds]

    def names(self, kind):
        return {o["metadata"].get("name") for _, o in self.of_kind(kind)}

    def check(self):
        for path, obj in self.objects:
            self.check_metadata(path, obj)
        namespaces = self.names("Namespace")
        for path, obj in self.objects:
            self.check_object(path, obj, namespaces)
        for path, obj in self.of_kind(*WORKLOADS):
            self.check_workload(f"{path}: {obj['kind']} {obj['metadata'].get('name')}", obj)
        for path, obj in self.of_kind("Service"):
            self.check_service(f"{path}: Service {obj['metadata'].get('name')}", obj)
        for path, obj in self.of_kind("ConfigMap"):
            for key, value in (obj.get("data") or {}).items():
                if key.endswith(".toml"):
                    self.check_nodes_toml(f"{path}: ConfigMap {obj['metadata'].get('name')} {key}", value)
        return self.errors

    def check_metadata(self, path, obj):
        """Reports missing top-level fields; leaves obj["metadata"] a dict."""
        where = f"{path}: {obj.get('kind') or '(no kind)'}"
        for field in ("apiVersion", "kind", "metadata"):
            if field not in obj:
                self.error(where, f"no {field}")
        metadata = obj.get("metadata")
        if not isinstance(metadata, dict) or not isinstance(metadata.get("name"), str):
            self.error(where, "no metadata.name")
            obj["metadata"] = dict(metadata) if isinstance(metadata, dict) else {}
            obj["metadata"]["name"] = None

    def check_object(self, path, obj, namespaces):
        kind = obj.get("kind")
        metadata = obj["metadata"]
        name = metadata["name"]
        if name is None:
            return
        where = f"{path}: {kind} {name}"
        if not NAME.match(name) or len(name) > 63:
            self.error(where, "metadata.name is not a DNS-1123 label")
        if kind not in KINDS:
            self.error(where, f"unknown kind (this checker knows {', '.join(sorted(KINDS))})")
            return
        api_version, namespaced = KINDS[kind]
        if obj.get("apiVersion") != api_version:
            self.error(where, f"apiVersion is {obj.get('apiVersion')!r}, {kind} needs {api_version!r}")
        if namespaced and metadata.get("namespace") not in namespaces:
            self.error(where, f"namespace {metadata.get('namespace')!r} is not created by these files")
        if not namespaced and "namespace" in metadata:
            self.error(where, f"{kind} is not namespaced but has a namespace")

    def check_workload(self, where, obj):
        spec = obj.get("spec") or {}
        template = spec.get("template") or {}
        labels = (template.get("metadata") or {}).get("labels") or {}
        match = (spec.get("selector") or {}).get("matchLabels") or {}
        if not match:
            self.error(where, "no spec.selector.matchLabels")
        for key, value in match.items():
            if labels.get(key) != value:
                self.error(where, f"selector {key}={value} does not match the template's labels")
        if obj["kind"] == "StatefulSet":
            service = spec.get("serviceName")
            headless = {o["metadata"]["name"] for _, o in self.of_kind("Service")
                        if (o.get("spec") or {}).get("clusterIP") == "None"}
            if service not in headless:
                self.error(where, f"serviceName {service!r} is not a headless Service of these files")
        pod = template.get("spec") or {}
        containers = pod.get("containers") or []
        if not containers:
            self.error(where, "no containers")
        volumes = {v.get("name"): v for v in pod.get("volumes") or []}
        for volume in volumes.values():
            self.check_volume(where, volume)
        names = [c.get("name") for c in containers]
        if len(set(names)) != len(names):
            self.error(where, "container names are not unique")
        for container in containers:
            self.check_container(f"{where} container {container.get('name')}", container, containers, volumes)

    def check_volume(self, where, volume):
        if "configMap" in volume and volume["configMap"].get("name") not in self.names("ConfigMap"):
            self.error(where, f"volume {volume.get('name')}: ConfigMap {volume['configMap'].get('name')!r} is not defined")
        claim = (volume.get("persistentVolumeClaim") or {}).get("claimName")
        if "persistentVolumeClaim" in volume and claim not in self.names("PersistentVolumeClaim"):
            self.error(where, f"volume {volume.get('name')}: PersistentVolumeClaim {claim!r} is not defined")
        if "secret" in volume and not volume["secret"].get("secretName"):
            self.error(where, f"volume {volume.get('name')}: no secretName")

    def check_container(self, where, container, containers, volumes):
        if not container.get("name"):
            self.error(where, "no name")
        if not container.get("image"):
            self.error(where, "no image")
        ports = container.get("ports") or []
        numbers, port_names = set(), set()
        for port in ports:
            number = port.get("containerPort")
            if not isinstance(number, int) or not 1 <= number <= 65535:
                self.error(where, f"containerPort {number!r} is not a port number")
            numbers.add(number)
            if "name" in port:
                if not NAME.match(str(port["name"])) or len(port["name"]) > 15 or port["name"] in port_names:
                    self.error(where, f"port name {port['name']!r} is invalid or repeated")
                port_names.add(port["name"])
        for probe_name in ("livenessProbe", "readinessProbe", "startupProbe"):
            if probe_name in container:
                self.check_probe(f"{where} {probe_name}", container[probe_name], numbers, port_names)
        env = {}
        for variable in container.get("env") or []:
            env[variable.get("name")] = variable
            self.check_env(f"{where} env {variable.get('name')}", variable, container, containers)
        for field in ("command", "args"):
            for arg in container.get(field) or []:
                for name in VAR.findall(str(arg)):
                    if name not in env:
                        self.error(where, f"{field} uses $({name}), which env does not define")
        for mount in container.get("volumeMounts") or []:
            if mount.get("name") not in volumes:
                self.error(where, f"volumeMount {mount.get('name')!r} names no volume of the pod")
            if not str(mount.get("mountPath", "")).startswith("/"):
                self.error(where, f"volumeMount {mount.get('name')!r}: mountPath must be absolute")

    def check_probe(self, where, probe, numbers, port_names):
        handlers = [h for h in ("grpc", "httpGet", "tcpSocket", "exec") if h in probe]
        if len(handlers) != 1:
            self.error(where, f"needs exactly one handler, has {handlers or 'none'}")
            return
        handler = probe[handlers[0]]
        if handlers[0] == "grpc":
            if not isinstance(handler.get("port"), int):
                self.error(where, "a gRPC probe's port must be a number")
            elif handler["port"] not in numbers:
                self.error(where, f"port {handler['port']} is not a containerPort of this container")
        elif handlers[0] in ("httpGet", "tcpSocket"):
            port = handler.get("port")
            if port not in numbers and port not in port_names:
                self.error(where, f"port {port!r} is not a declared port of this container")

    def check_env(self, where, variable, container, containers):
        source = variable.get("valueFrom")
        if source is None:
            return
        if "fieldRef" in source and source["fieldRef"].get("fieldPath") not in FIELD_PATHS:
            self.error(where, f"fieldRef {source['fieldRef'].get('fieldPath')!r} is not a Downward API field of a container")
        if "resourceFieldRef" in source:
            ref = source["resourceFieldRef"]
            target_name = ref.get("containerName", container.get("name"))
            target = next((c for c in containers if c.get("name") == target_name), None)
            resource = ref.get("resource")
            if target is None:
                self.error(where, f"resourceFieldRef names container {target_name!r}, which the pod does not have")
            elif resource not in RESOURCES:
                self.error(where, f"resourceFieldRef resource {resource!r} is not one the Downward API offers")
            else:
                group, name = resource.split(".")
                if name not in ((target.get("resources") or {}).get(group) or {}):
                    self.error(where, f"{resource} is not set on container {target_name!r} (it would be the node's allocatable)")

    def check_service(self, where, obj):
        spec = obj.get("spec") or {}
        ports = spec.get("ports") or []
        if not ports:
            self.error(where, "no ports")
        selector = spec.get("selector") or {}
        selected = []
        for _, workload in self.of_kind(*WORKLOADS):
            template = (workload.get("spec") or {}).get("template") or {}
            labels = (template.get("metadata") or {}).get("labels") or {}
            if selector and all(labels.get(k) == v for k, v in selector.items()):
                selected.append(template)
        if not selected:
            self.error(where, "its selector selects no workload of these files")
        for port in ports:
            if not isinstance(port.get("port"), int) or not 1 <= port["port"] <= 65535:
                self.error(where, f"port {port.get('port')!r} is not a port number")
            if len(ports) > 1 and not port.get("name"):
                self.error(where, "a Service with several ports must name each")
            target = port.get("targetPort", port.get("port"))
            for template in selected:
                declared = [p for c in (template.get("spec") or {}).get("containers") or [] for p in c.get("ports") or []]
                if target not in [p.get("name") for p in declared] + [p.get("containerPort") for p in declared]:
                    self.error(where, f"targetPort {target!r} is not a port of the pods it selects")

    def check_nodes_toml(self, where, text):
        try:
            config = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            self.error(where, f"is not valid TOML: {e}")
            return
        nodes = config.get("nodes")
        if not isinstance(nodes, list) or not nodes:
            self.error(where, "has no [[nodes]]")
            return
        exposed = {p.get("port") for _, s in self.of_kind("Service") for p in (s.get("spec") or {}).get("ports") or []}
        for i, node in enumerate(nodes):
            for key in ("fabric_addr", "mem", "cpu"):
                if key not in node:
                    self.error(where, f"node {i + 1} has no {key}")
            for key in ("fabric_addr", "bridge_bind"):
                if key in node:
                    port = str(node[key]).rpartition(":")[2]
                    if not port.isdigit() or int(port) not in exposed:
                        self.error(where, f"node {i + 1}'s {key} {node[key]!r} is on no port a Service exposes")
        if sum("bridge_bind" in n for n in nodes) != 1:
            self.error(where, "exactly one node must have a bridge_bind")


def run(paths):
    checker = Checker()
    for path in paths:
        checker.load(path)
    return checker.check()


def self_test(directory, manifests):
    """Each DIR/bad_*.yaml stands in for the manifest its "# replaces: NAME"
    line names (or is added to them) and must draw its "# expect:" errors."""
    import glob
    import os
    failures = []
    bad_files = sorted(glob.glob(os.path.join(directory, "bad_*.yaml")))
    if not bad_files:
        failures.append(f"no bad_*.yaml in {directory}")
    for bad in bad_files:
        with open(bad, encoding="utf-8") as f:
            lines = f.read().splitlines()
        expected = [line.split(":", 1)[1].strip() for line in lines if line.startswith("# expect:")]
        replaces = [line.split(":", 1)[1].strip() for line in lines if line.startswith("# replaces:")]
        if not expected:
            failures.append(f"{bad}: no '# expect:' line")
        errors = run([m for m in manifests if os.path.basename(m) not in replaces] + [bad])
        for text in expected:
            if not any(text in e for e in errors):
                failures.append(f"{bad}: expected an error with {text!r}, got {errors or 'none'}")
    return failures


def main(argv):
    if len(argv) > 2 and argv[1] == "--self-test":
        manifests = argv[3:]
        problems = run(manifests) + self_test(argv[2], manifests)
    else:
        manifests = argv[1:]
        problems = run(manifests) if manifests else ["no files given"]
    for problem in problems:
        print(problem, file=sys.stderr)
    if not problems:
        print(f"check_manifests: {len(manifests)} files, every object checked")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
