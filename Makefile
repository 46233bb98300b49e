# The verbs a person types. Run as root: targets install what they need with apt-get, and the
# tests build chroots. Only Debian's own Python is used (it has python3-apt).

PYTHON := /usr/bin/python3
APT_INSTALL := apt-get install -y --no-install-recommends -o DPkg::Lock::Timeout=300
SUITES ?= bookworm trixie
REPO_DIR ?= build/repo
DEBS_DIR ?= build/debs

# Building debs (the toolkit's own Build-Depends are added from debian/control below).
BUILD_PACKAGES := dpkg-dev debhelper dh-python pybuild-plugin-pyproject python3-setuptools \
	python3-all python3-click fakeroot po-debconf build-essential
# Publishing and testing: signing, indexes, chroots, and the libraries the toolkit uses.
TEST_PACKAGES := python3-apt python3-click python3-debian python3-pytest python3-hypothesis python3-yaml \
	mmdebstrap apt-utils gnupg gpgv debian-archive-keyring lintian ca-certificates \
	coreutils mount gzip xz-utils debconf busybox
# appliance-control: its libraries and server (unit tests run it on the host), the browser for
# the end-to-end test, and wrk for its benchmark.
CONTROL_PACKAGES := python3-flask gunicorn python3-augeas augeas-lenses \
	chromium chromium-driver python3-selenium wrk
# Appliance images (vatools image build and its tests): disks without loop devices, boot
# tests under qemu (UEFI and BIOS), libvirt XML validation, OCI layouts run with podman.
IMAGE_PACKAGES := fdisk e2fsprogs dosfstools mtools systemd-boot-efi grub-pc-bin qemu-utils \
	qemu-system-x86 ovmf libvirt-clients libxml2-utils skopeo podman runc zstd
# Many servers (vainstall --host, the Ansible collection, their tests and bench): the ssh client,
# Ansible, and iproute2 for the test hosts' network namespaces.
FLEET_PACKAGES := openssh-client ansible-core iproute2 util-linux
# Source dirs built on this system; their Build-Depends are installed too.
HOST_SOURCES := $(CURDIR) $(patsubst %/debian/control,%,$(wildcard $(CURDIR)/appliances/*/debian/control))
APPLIANCE_SOURCES := $(patsubst %/debian/control,%,$(wildcard appliances/*/debian/control))

.PHONY: help setup test demo deb appliances repo bench lint clean

help:
	@echo "make setup       install every build and test dependency (apt-get)"
	@echo "make test        setup, then run all tests (unit and real chroots; needs root)"
	@echo "make demo        setup, then the guided demo"
	@echo "make deb         the toolkit's .deb into $(DEBS_DIR)"
	@echo "make appliances  the appliances' .debs into $(DEBS_DIR)"
	@echo "make repo        build everything and publish signed repositories in $(REPO_DIR)"
	@echo "make bench       measurements against the raw tools"
	@echo "make lint        mypy (and ruff where Debian has it), lintian on the built debs"
	@echo "                 (those of make deb and appliances, and of make repo if it ran)"

setup:
	apt-get update
	$(APT_INSTALL) $(BUILD_PACKAGES) $(TEST_PACKAGES) $(CONTROL_PACKAGES) $(IMAGE_PACKAGES) $(FLEET_PACKAGES)
	apt-get build-dep -y --no-install-recommends -o DPkg::Lock::Timeout=300 $(HOST_SOURCES)

test: setup
	$(PYTHON) -m pytest

demo: setup
	$(PYTHON) -m tests.support.demo

deb: setup
	$(PYTHON) -m vatools repo debs $(DEBS_DIR) .

appliances: setup
	$(PYTHON) -m vatools repo debs $(DEBS_DIR) $(APPLIANCE_SOURCES)

repo: setup
	$(PYTHON) -m vatools repo build $(REPO_DIR) $(addprefix --suite ,$(SUITES))

bench: setup
	$(PYTHON) bench/run.py
	$(PYTHON) bench/bench_backup.py
	$(PYTHON) bench/bench_control.py
	$(PYTHON) bench/bench_image.py
	$(PYTHON) bench/bench_container.py
	$(PYTHON) bench/bench_fleet.py

# ruff and mypy are used only as Debian packages them (bookworm has mypy but no ruff).
lint: deb appliances
	$(APT_INSTALL) mypy
	mypy vatools
	@if apt-cache show ruff >/dev/null 2>&1; then \
		$(APT_INSTALL) ruff && ruff check vatools tests; \
	else echo "ruff: not packaged in this Debian release, not run"; fi
	lintian --fail-on error,warning $(DEBS_DIR)/*.deb $(wildcard $(REPO_DIR)/*/*.deb)

clean:
	rm -rf build
