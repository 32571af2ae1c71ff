# aa: developer entry points. `make demo` and `make test` are all a new machine needs.
CARGO ?= cargo
PREFIX ?= /usr/local
DEMO_OUT := $(CURDIR)/demo-output

.PHONY: all build release demo test python-aa moto lint fmt install clean

all: build

build:
	$(CARGO) build --workspace

release:
	$(CARGO) build --workspace --release

# Builds host and plugins, backs up examples/demo/tree and prints where the backup is.
demo: build
	@rm -rf $(DEMO_OUT) && mkdir -p $(DEMO_OUT)/config
	@sed 's|@ROOT@|$(CURDIR)/examples/demo/tree|' examples/demo/demo.aa.in > $(DEMO_OUT)/demo.aa
	./target/debug/aa --list-providers
	./target/debug/aa --user-config-dir $(DEMO_OUT)/config --dest-dir $(DEMO_OUT) -v $(DEMO_OUT)/demo.aa
	@echo
	@echo "Backup created: $(DEMO_OUT)/demo.tar.gz"
	@tar -tzvf $(DEMO_OUT)/demo.tar.gz

# The reference Python aa 2.0.6 (from PyPI, in target/python-aa) for the differential tests.
python-aa:
	@tests/setup-python-aa.sh

# moto's S3-compatible server (from PyPI, in target/moto-venv) for the object-store tests.
moto:
	@tests/setup-moto.sh

# Every test: unit tests of each crate and the end-to-end tests of the built binary.
test: build python-aa moto
	$(CARGO) test --workspace

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

SHARE = $(DESTDIR)$(PREFIX)/share

install: release
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/aa/plugins $(SHARE)/man/man1 \
		$(SHARE)/bash-completion/completions $(SHARE)/zsh/site-functions $(SHARE)/fish/vendor_completions.d
	install -m 755 target/release/aa $(DESTDIR)$(PREFIX)/bin/aa
	install -m 755 target/release/libaa_plugin_tar_internal.so target/release/libaa_plugin_tar_external.so \
		$(DESTDIR)$(PREFIX)/lib/aa/plugins/
	target/release/aa --generate man > $(SHARE)/man/man1/aa.1
	target/release/aa --generate bash > $(SHARE)/bash-completion/completions/aa
	target/release/aa --generate zsh > $(SHARE)/zsh/site-functions/_aa
	target/release/aa --generate fish > $(SHARE)/fish/vendor_completions.d/aa.fish

clean:
	$(CARGO) clean
	rm -rf $(DEMO_OUT)

# Builds the release binaries and runs the performance benchmark (see BENCHMARKS.md): our aa
# against GNU tar, pigz, zstd, xz and pbzip2. REPS=n sets the repetitions, TYPES="tar gz" the
# backup types, AA_BENCH_DIR the corpus cache.
.PHONY: bench
bench:
	$(CARGO) build --release -p aa-host -p aa-plugin-tar-internal -p aa-plugin-tar-external
	bench/run.sh

# Fault injection (tests/faults/shim.c): every fault x every type of both providers, as a
# table; non-zero unless every row is "nothing lost". `make test` runs a subset.
.PHONY: faults
faults: build
	$(CARGO) test -p aa-tests --test faults -- --ignored --nocapture every_fault_loses_nothing

# Runs every fuzz target (fuzz/) for FUZZ_SECONDS seconds each (default 60), one at a time,
# and fails on any crash, timeout or out-of-memory; needs nightly (or RUSTC_BOOTSTRAP=1,
# which fuzz/run.sh sets without one) and installs cargo-fuzz if missing. `make test`
# replays the saved corpora and past crashes on stable.
.PHONY: fuzz
FUZZ_SECONDS ?= 60
fuzz:
	FUZZ_SECONDS=$(FUZZ_SECONDS) fuzz/run.sh

# The unsafe code that Miri can run, under Miri (nightly; about a minute, not part of
# `make test`): the ABI layer's unit tests (not `naming`: Miri has no fcntl locks), the
# plugin loader's ELF screening, and the fuzz corpora replayed through their parsers
# (the spec loader's files are opened with O_NONBLOCK, which Miri lacks; TarInternal's tar
# readers take another 3 minutes: MIRI_ALL=1 adds them). dlopen cannot run under Miri, so the
# loading of real plugins is not covered.
.PHONY: miri
miri:
	MIRIFLAGS="-Zmiri-disable-isolation" $(CARGO) +nightly miri test -p aa-abi --lib -- --skip naming::
	MIRIFLAGS="-Zmiri-disable-isolation" $(CARGO) +nightly miri test -p aa-host --lib plugin_loader::elf
	MIRIFLAGS="-Zmiri-disable-isolation" $(CARGO) +nightly miri test -p aa-fuzz-entries --test replay
	if [ -n "$(MIRI_ALL)" ]; then MIRIFLAGS="-Zmiri-disable-isolation" $(CARGO) +nightly miri test -p aa-fuzz-entries-tar-internal --test replay; fi
