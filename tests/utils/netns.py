"""Hosts of their own for agents: a network namespace per host, joined to this machine by a veth
pair (`10.203.N.1` here, `10.203.N.2` there), with a route out through NAT, as a machine on a
private network would have. What the agent reaches, it reaches by those addresses."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass

SUBNET = "10.203.0.0/16"
# Docker sets the FORWARD policy to DROP: the hosts' traffic out is let through, and answered.
FORWARD_RULES = (
    ["FORWARD", "-i", "shn+", "-j", "ACCEPT"],
    ["FORWARD", "-o", "shn+", "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT"],
)
NAT_RULE = ["POSTROUTING", "-s", SUBNET, "!", "-o", "shn+", "-j", "MASQUERADE"]


def run(*command: str) -> None:
    subprocess.run(command, check=True, capture_output=True)


@dataclass(frozen=True)
class Host:
    """One host: its namespace, and the two ends of its link."""

    index: int
    prefix: str

    @property
    def netns(self) -> str:
        return f"{self.prefix}-h{self.index}"

    @property
    def link(self) -> str:
        """The link's end on this machine (its name matches the forwarding rules)."""
        return f"shn{self.prefix[-6:]}{self.index}"

    @property
    def address(self) -> str:
        """The host's own address, where the edge reaches its apps."""
        return f"10.203.{self.index}.2"

    @property
    def gateway(self) -> str:
        """This machine's address as the host sees it: the hub, Redis."""
        return f"10.203.{self.index}.1"

    def create(self) -> Host:
        """Make the namespace and its link, with a route out."""
        run("ip", "netns", "add", self.netns)
        run("ip", "link", "add", self.link, "type", "veth", "peer", "name", "eth0", "netns", self.netns)
        run("ip", "addr", "add", f"{self.gateway}/24", "dev", self.link)
        run("ip", "link", "set", self.link, "up")
        run("ip", "-n", self.netns, "addr", "add", f"{self.address}/24", "dev", "eth0")
        run("ip", "-n", self.netns, "link", "set", "eth0", "up")
        run("ip", "-n", self.netns, "link", "set", "lo", "up")
        run("ip", "-n", self.netns, "route", "add", "default", "via", self.gateway)
        return self

    def unplug(self) -> None:
        """Take the host off the network (its link down), as a lost machine is."""
        run("ip", "link", "set", self.link, "down")

    def remove(self) -> None:
        """Delete the namespace (its link goes with it)."""
        subprocess.run(["ip", "netns", "delete", self.netns], capture_output=True)


def allow_forwarding() -> None:
    """Let the hosts' traffic through this machine (idempotent)."""
    for rule in FORWARD_RULES:
        if subprocess.run(["iptables", "-C", *rule], capture_output=True).returncode:
            run("iptables", "-I", *rule)
    if subprocess.run(["iptables", "-t", "nat", "-C", *NAT_RULE], capture_output=True).returncode:
        run("iptables", "-t", "nat", "-A", *NAT_RULE)


def stop_forwarding() -> None:
    """Take the rules `allow_forwarding` added out again."""
    for rule in FORWARD_RULES:
        subprocess.run(["iptables", "-D", *rule], capture_output=True)
    subprocess.run(["iptables", "-t", "nat", "-D", *NAT_RULE], capture_output=True)
