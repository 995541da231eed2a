"""The network apps run on: a bridge where apps cannot talk to each other (ICC off) and, with
iptables, cannot reach the host's other services (Redis, the controller, the agent) nor blocked
networks such as cloud metadata; only the hub's public port is open to them."""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import logging
import shutil
import subprocess

import docker
import docker.errors
from docker.models.networks import Network

log = logging.getLogger(__name__)


def bridge_name(network_name: str) -> str:
    """A Linux interface name (at most 15 characters) for the network's bridge."""
    return "shb-" + hashlib.sha1(network_name.encode()).hexdigest()[:10]


def ensure_app_network(client: docker.DockerClient, name: str) -> Network:
    """The apps network (a bridge without inter-container traffic), created if it does not exist yet."""
    try:
        return client.networks.get(name)
    except docker.errors.NotFound:
        pass
    try:
        return client.networks.create(
            name,
            driver="bridge",
            options={
                "com.docker.network.bridge.enable_icc": "false",
                "com.docker.network.bridge.name": bridge_name(name),
            },
            labels={"spacehub.network": "apps"},
        )
    except docker.errors.APIError as exc:
        if exc.status_code == 409:  # another agent on this engine created it meanwhile
            return client.networks.get(name)
        raise


def gateway_address(network: Network) -> str:
    """The gateway address of a Docker network: where its containers reach the host."""
    network.reload()
    configs = network.attrs.get("IPAM", {}).get("Config") or []
    for config in configs:
        if config.get("Gateway"):
            return str(config["Gateway"])
    subnet = ipaddress.ip_network(configs[0]["Subnet"]) if configs else None
    if subnet is None:
        raise RuntimeError(f"network {network.name} has no subnet")
    return str(next(subnet.hosts()))


def _iptables(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["iptables", "-w", *args], capture_output=True, text=True)


class FirewallUnavailable(RuntimeError):
    """Apps cannot be firewalled on this host: they must not run here."""


def guard_app_network(network_name: str, open_ports: list[int], blocked_networks: list[str]) -> None:
    """Firewall the apps network (FirewallUnavailable where iptables cannot be used)."""
    bridge = bridge_name(network_name)
    guard_bridge(bridge, f"SPACEHUB-{bridge[4:]}", open_ports, blocked_networks)


def guard_bridge(bridge: str, chain: str, open_ports: list[int], blocked_networks: list[str]) -> None:
    """Containers on `bridge` may reach only `open_ports` on this host, and none of
    `blocked_networks`. Additive: installations sharing a bridge each open their own port."""
    if shutil.which("iptables") is None:
        raise FirewallUnavailable(f"iptables is not installed: containers on {bridge} would reach this host")
    created = _iptables("-N", chain)
    if created.returncode not in (0, 1):
        raise FirewallUnavailable(f"iptables refuses to work (not root?): {created.stderr.strip()}")
    established = ["-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT"]
    if _iptables("-C", chain, *established).returncode != 0:
        _iptables("-I", chain, "1", *established)
    for port in open_ports:
        rule = ["-p", "tcp", "--dport", str(port), "-j", "ACCEPT"]
        if _iptables("-C", chain, *rule).returncode != 0:
            _iptables("-I", chain, "2", *rule)
    for rule in (["-p", "tcp", "-j", "REJECT", "--reject-with", "tcp-reset"], ["-j", "DROP"]):
        if _iptables("-C", chain, *rule).returncode != 0:
            _iptables("-A", chain, *rule)
    if _iptables("-C", "INPUT", "-i", bridge, "-j", chain).returncode != 0:
        _iptables("-I", "INPUT", "-i", bridge, "-j", chain)
    for cidr in blocked_networks:
        rule = ["-i", bridge, "-d", cidr, "-j", "REJECT"]
        if _iptables("-C", "DOCKER-USER", *rule).returncode != 0:
            _iptables("-I", "DOCKER-USER", *rule)


def remove_app_network(client: docker.DockerClient, name: str) -> None:
    """Remove the apps network and its firewall rules (uninstall, tests); containers must be gone."""
    bridge = bridge_name(name)
    chain = f"SPACEHUB-{bridge[4:]}"
    if shutil.which("iptables"):
        while _iptables("-D", "INPUT", "-i", bridge, "-j", chain).returncode == 0:
            pass
        listing = _iptables("-S", "DOCKER-USER").stdout.splitlines()
        for rule in listing:
            if f"-i {bridge} " in rule and rule.startswith("-A "):
                _iptables("-D", *rule.split()[1:])
        _iptables("-F", chain)
        _iptables("-X", chain)
    with contextlib.suppress(docker.errors.NotFound):
        client.networks.get(name).remove()
