"""deploy/docker/Dockerfile, checked without Docker (there is none on the
build machines): its stages are Debian bookworm, it installs its packages
through deploy/local/deps.sh, the runtime package list covers every shared
library the built binaries load (ldd, dpkg), the binaries it copies are
exactly the CMake executables under services/, and it runs as the
unprivileged user the Helm chart expects. This is not a `docker build`.
Run by CTest as
  /usr/bin/python3 tests/deploy/dockerfile_test.py BUILD_DIR
"""

import functools
import os
import re
import shlex
import subprocess
import sys
import unittest

import yaml

BUILD_DIR = os.path.abspath(sys.argv.pop(1) if len(sys.argv) > 1 else "build")
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DOCKERFILE = os.path.join(ROOT, "deploy", "docker", "Dockerfile")
DEPS = os.path.join(ROOT, "deploy", "local", "deps.sh")


def read(path):
    with open(path) as f:
        return f.read()


def instructions(text):
    """(INSTRUCTION, arguments) for each line of a Dockerfile, continuations joined."""
    joined = re.sub(r"\\\n", " ", text)
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def stages(text):
    """The Dockerfile's stages: lists of instructions, each starting with FROM."""
    out = []
    for word, rest in instructions(text):
        if word == "FROM":
            out.append([])
        out[-1].append((word, rest))
    return out


def deps_list(name):
    """One of deps.sh's package arrays, as bash sees it."""
    script = f'source <(sed -n "/^{name}=(/,/^)/p" {shlex.quote(DEPS)}); echo "${{{name}[@]}}"'
    out = subprocess.run(["bash", "-c", script], check=True, capture_output=True, text=True)
    return out.stdout.split()


def cmake_executables():
    """Every executable the services' CMake files define."""
    names = set()
    for folder, _, files in os.walk(os.path.join(ROOT, "services")):
        if "CMakeLists.txt" not in files:
            continue
        text = read(os.path.join(folder, "CMakeLists.txt"))
        names.update(f"qunzu-{n}" for n in re.findall(r"^\s*qunzu_add_service\((\w+)", text, re.M))
        names.update(n for n in re.findall(r"^\s*add_executable\(([^\s)]+)", text, re.M)
                     if "$" not in n)
    return names


def installed_packages():
    """{package: (priority, [packages it depends on])} for what is installed here."""
    out = subprocess.run(
        ["dpkg-query", "-W", "-f=${Package}\t${Priority}\t${Depends}, ${Pre-Depends}\n"],
        check=True, capture_output=True, text=True).stdout
    packages = {}
    for line in out.splitlines():
        name, priority, depends = line.split("\t")
        names = [d.strip().split(" ")[0].split(":")[0] for d in re.split(r"[,|]", depends)]
        packages[name] = (priority, [n for n in names if n])
    return packages


def closure(packages, installed):
    """The packages and everything they depend on, as installed here."""
    seen, todo = set(), list(packages)
    while todo:
        p = todo.pop()
        if p not in seen:
            seen.add(p)
            todo.extend(installed.get(p, ("", []))[1])
    return seen


@functools.lru_cache(maxsize=None)
def owning_package(path):
    candidates = [path, os.path.realpath(path)]
    for c in list(candidates):
        if c.startswith("/usr/lib/"):
            candidates.append(c[len("/usr"):])
    for c in candidates:
        out = subprocess.run(["dpkg", "-S", c], capture_output=True, text=True)
        if out.returncode == 0:
            return out.stdout.split(":")[0].strip()
    return None


class DockerfileTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.text = read(DOCKERFILE)
        cls.stages = stages(cls.text)
        arg = next(rest for word, rest in cls.stages[0] if word == "ARG"
                   and rest.startswith("QUNZU_BINARIES="))
        cls.binaries = shlex.split(arg.split("=", 1)[1])[0].split()

    def test_multi_stage_on_debian_bookworm(self):
        self.assertGreaterEqual(len(self.stages), 2)
        for stage in self.stages:
            image = stage[0][1].split()[0]
            self.assertRegex(image, r"^debian:bookworm(-slim)?$")

    def test_packages_come_from_deps_sh_and_nowhere_else(self):
        build, runtime = self.stages[0], self.stages[-1]
        runs = lambda stage: " ; ".join(rest for word, rest in stage if word == "RUN")
        self.assertIn("deploy/local/deps.sh --build", runs(build))
        self.assertIn("/tmp/deps.sh --runtime", runs(runtime))
        self.assertIn("COPY deploy/local/deps.sh /tmp/deps.sh",
                      " ".join(f"{w} {r}" for w, r in runtime))
        self.assertNotIn("apt-get install", self.text)
        self.assertNotIn("pip install", self.text)
        self.assertNotRegex(self.text, r"\b(curl|wget)\b")

    def test_deps_sh_runtime_names_are_bookworm_packages(self):
        runtime = deps_list("runtime_packages")
        self.assertIn("libgrpc++1.51", runtime)
        for package in runtime:
            status = subprocess.run(["dpkg-query", "-W", "-f=${Status}", package],
                                    capture_output=True, text=True).stdout
            self.assertEqual(status, "install ok installed", package)
        # With no argument deps.sh installs the runtime list too.
        self.assertIn('packages=("${runtime_packages[@]}" "${build_packages[@]}"', read(DEPS))

    def test_it_copies_exactly_the_cmake_executables(self):
        self.assertEqual(set(self.binaries), cmake_executables())
        self.assertIn("COPY --from=build /out/ /usr/local/bin/",
                      " ".join(f"{w} {r}" for w, r in self.stages[-1]))

    def test_runtime_packages_cover_every_shared_library_the_binaries_load(self):
        installed = installed_packages()
        # The base image holds every package of priority "required" (libc6, ...).
        required = [p for p, (priority, _) in installed.items() if priority == "required"]
        allowed = closure(deps_list("runtime_packages") + required, installed)
        checked = 0
        for binary in self.binaries:
            found = [os.path.join(folder, binary)
                     for folder, _, files in os.walk(os.path.join(BUILD_DIR, "services"))
                     if binary in files]
            self.assertEqual(len(found), 1, f"{binary} is not built in {BUILD_DIR}")
            ldd = subprocess.run(["ldd", found[0]], check=True, capture_output=True,
                                 text=True).stdout
            self.assertNotIn("not found", ldd, binary)
            for library in re.findall(r"=> (/\S+)", ldd):
                package = owning_package(library)
                self.assertIsNotNone(package, f"{binary}: {library} belongs to no package")
                self.assertTrue(package in allowed,
                                f"{binary} loads {library} from {package}, which "
                                "deps.sh --runtime does not install")
                checked += 1
        self.assertGreater(checked, 20)

    def test_runs_as_the_unprivileged_user_the_chart_expects(self):
        values = yaml.safe_load(read(os.path.join(ROOT, "helm", "qunzu", "values.yaml")))
        uid = values["securityContext"]["runAsUser"]
        gid = values["securityContext"]["runAsGroup"]
        users = [rest for word, rest in self.stages[-1] if word == "USER"]
        self.assertEqual(users, [f"{uid}:{gid}"])
        self.assertIn(f"--uid {uid}", self.text)
        self.assertIn(f"--gid {gid}", self.text)

    def test_exposes_the_ports_the_chart_uses(self):
        values = yaml.safe_load(read(os.path.join(ROOT, "helm", "qunzu", "values.yaml")))
        expose = " ".join(rest for word, rest in self.stages[-1] if word == "EXPOSE").split()
        ranges = [tuple(map(int, r.split("-"))) for r in expose]
        for name, service in values["services"].items():
            for port in [service["grpcPort"], service["metricsPort"]]:
                self.assertTrue(any(lo <= port <= hi for lo, hi in ranges), f"{name} {port}")
            self.assertIn(f"qunzu-{name}", self.binaries)


if __name__ == "__main__":
    unittest.main(verbosity=2)
