"""Seeds: the debconf answers an appliance ships, and everything that reads or applies them.

    file        seed files: parse, check the syntax as debconf does, write (pure)
    check       a seed held against the templates of the packages in play
    policy      the one rule for what a seed becomes on a system, and every problem with it
    templates   debconf templates read from .debs or from a debconf database
    skeleton    every question a set of packages asks, as commented-out seed lines
    debconfdb   snapshot, apply and restore selections in a target's debconf database
"""
