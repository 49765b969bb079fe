# One entry point for a developer and for CI (.ci/run calls `make check`).
PY ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
export PATH := $(BIN):$(PATH)

.PHONY: install serve check bench

$(VENV)/.installed: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -e '.[server,test]'
	touch $@

install: $(VENV)/.installed

## serve: install, create a demo node under ./data on first run, run it on 127.0.0.1:8260;
## the first administrator's credential is then in data/administrator.credential (0600)
serve: install
	@fc-list 2>/dev/null | grep -qi "wqy\|noto sans cjk" || echo "serve: no CJK font: 存证证书 answer 503 (apt-get install fonts-wqy-microhei)" >&2
	@test -f data/node.json || $(BIN)/sifa init data --court 1101-0105 --name 示例人民法院 --designator 京0105 \
		--credential-file data/administrator.credential
	SIFA_PUBLIC_URL=$${SIFA_PUBLIC_URL:-http://127.0.0.1:8260} $(BIN)/sifa serve --data-dir data

## check: install, then lint, types, import contracts and every test (PostgreSQL started by the tests)
check: install
	bash .ci/system-packages
	$(BIN)/python -m pytest; rc=$$?; \
	if [ $$rc = 5 ]; then echo 'check: pytest ran no test; that is a failure' >&2; exit 1; fi; exit $$rc

## bench: the figures of docs/benchmarks.md (long: minutes, GBs of disk)
bench: install
	$(BIN)/python -m bench all
