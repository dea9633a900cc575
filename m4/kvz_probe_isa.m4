# KVZ_PROBE_ISA(NAME, FLAGS, PROLOGUE, BODY): links BODY with only FLAGS added; on success
# sets have_isa_<name>=yes and substitutes CFLAGS_<NAME>. Linking (not only compiling)
# proves that the assembler and the intrinsics headers both know the instructions.
AC_DEFUN([KVZ_PROBE_ISA], [
  m4_pushdef([kvz_lc], m4_tolower([$1]))
  AC_MSG_CHECKING([whether $CC can build $1 kernels with '$2'])
  kvz_probe_save_CFLAGS="$CFLAGS"
  CFLAGS="$CFLAGS $2"
  AC_LINK_IFELSE([AC_LANG_PROGRAM([$3], [$4])],
    [have_isa_[]kvz_lc=yes], [have_isa_[]kvz_lc=no])
  CFLAGS="$kvz_probe_save_CFLAGS"
  AC_MSG_RESULT([$have_isa_[]kvz_lc])
  AC_SUBST([CFLAGS_$1], ["$2"])
  m4_popdef([kvz_lc])
])
