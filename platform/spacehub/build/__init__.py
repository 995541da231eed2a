"""Turning a space's repository into a runnable image: runtimes, SDK templates, docker builds."""
