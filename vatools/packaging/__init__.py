"""Packaging: appliance source packages from scaffold to a signed repository.

    policy      Debian policy checks for what a packager types (names, versions, ...)
    generate    `vatools new`: an appliance source package and its seed skeleton
    build       dpkg-buildpackage on the host or in a per-release chroot
    repo        signed flat apt repositories, each appliance's seed published beside its .deb
"""
