# strata import heads: evaluation driver.
#
# Read after Heads's own Makefile (`make -f Makefile -f driver.mk strata-print`),
# so every module file, the board config and Heads's conditionals have already
# been evaluated by GNU make itself. It prints, for every module the board
# builds (and the modules those depend on), each variable Heads's
# define_module uses, expanded exactly as Heads's recipes see them (twice:
# once by $(call define_module), once when the recipe runs), one per line:
#   @@strata@@<TAB>kind<TAB>name<TAB>field<TAB>value
# with `\` `TAB` and newline escaped as `\\` `\t` `\n`, so a value can never
# be confused with the separators. The only goal is `strata-print`, whose
# recipe does nothing: no module is fetched or built.

strata_empty :=
strata_tab := $(strata_empty)	$(strata_empty)
define strata_nl


endef
strata_esc = $(subst $(strata_nl),\n,$(subst $(strata_tab),\t,$(subst \,\\,$1)))

# Expand a value a second time, as a recipe line would: the body of a
# `define` is stored verbatim (comments and newlines included), then expanded.
strata_x2 = $(eval define strata_tmp$(strata_nl)$1$(strata_nl)endef)$(strata_tmp)

strata_fields := version dir base_dir tar url hash repo commit_hash depends \
	configure target output libraries config config_file config_file_path \
	patch_version patch_name tar_opt module_file toolchain data modules-y \
	toolchain_build_args

strata_modules := $(sort $(modules-y) $(foreach m,$(modules-y),$($(m)_depends)))

$(info @@strata@@	board	$(BOARD)	modules-y	$(call strata_esc,$(modules-y)))
$(info @@strata@@	board	$(BOARD)	musl_dep	$(call strata_esc,$(musl_dep)))
$(info @@strata@@	board	$(BOARD)	CONFIG_TARGET_ARCH	$(call strata_esc,$(CONFIG_TARGET_ARCH)))
# What Heads's top-level Makefile assembles the board's image from.
strata_board_vars := GIT_HASH GIT_STATUS BRAND_NAME DATE CB_OUTPUT_FILE CB_BOOTBLOCK_FILE CB_UPDATE_PKG_FILE \
	CONFIG_COREBOOT CONFIG_LINUXBOOT CONFIG_LEGACY_FLASH CONFIG_HEADS CONFIG_COREBOOT_ROM \
	CONFIG_COREBOOT_BOOTBLOCK CONFIG_LINUX_BUNDLED LINUX_IMAGE_FILE LINUX_ARCH coreboot_module bin_modules-y initrd-y \
	BOARD_INITRD_FILES HEADS_INITRD_FILES CONFIG CROSS CROSS_TOOLS heads_cc \
	BOARD_TARGETS HEADS_GIT_VERSION
$(foreach v,$(strata_board_vars),\
	$(info @@strata@@	var	$(BOARD)	$(v)	$(call strata_esc,$($(v)))))
$(info @@strata@@	board	$(BOARD)	coreboot_toolchain_module	$(call strata_esc,$(coreboot_toolchain_module)))
$(info @@strata@@	board	$(BOARD)	COREBOOT_TARGET	$(call strata_esc,$(COREBOOT_TARGET)))
$(foreach v,$(sort $(filter CONFIG_%_CONFIG,$(.VARIABLES))),\
	$(info @@strata@@	param	$(BOARD)	$(v)	$(call strata_esc,$($(v)))))
$(foreach m,$(strata_modules),\
	$(info @@strata@@	module	$(m)	defined	$(if $(filter undefined,$(origin $(m)_version)$(origin $(m)_dir)),,y))\
	$(foreach f,$(strata_fields),\
		$(if $(filter undefined,$(origin $(m)_$(f))),,\
			$(info @@strata@@	module	$(m)	$(f)	$(call strata_esc,$(call strata_x2,$($(m)_$(f))))))))
$(info @@strata@@	end)

.PHONY: strata-print
# The board's exported CONFIG_ variables as a recipe sees them: what Heads
# writes into the initrd's etc/config. Printed raw, one per line.
strata-print:
	@export | grep ' CONFIG_' | sed -e 's/^declare -x /export /' -e 's/\\\"//g' \
		| sed -e 's/^/@@strata@@	etc-config	$(BOARD)	-	/'; true
