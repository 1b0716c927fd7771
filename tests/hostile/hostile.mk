# Tessera hostile-guest tests (bare-metal guests that attack the virtio devices).
# Meant to be included by the top-level Makefile, which defines BUILD: `make hostile`.

.PHONY: hostile

hostile: $(BUILD)/tessera
	@TESSERA=$(BUILD)/tessera tests/hostile/run.sh
