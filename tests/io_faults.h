/* I/O failure injection for tests: the file calls of the library's own objects, wrapped at link
 * time (-Wl,--wrap=open,...: see tests/io_faults.c), fail one at a time on demand. */
#ifndef KVZ_TESTS_IO_FAULTS_H
#define KVZ_TESTS_IO_FAULTS_H

/* The failures, each with the errno it leaves (every one different, so that a message
 * showing the right text proves the errno reached it unclobbered). */
typedef enum iof_kind {
    IOF_OPEN,          /* open fails: EACCES */
    IOF_MKSTEMP,       /* mkstemp fails: EACCES */
    IOF_FDOPEN,        /* fdopen fails: EMFILE (the descriptor stays open) */
    IOF_FWRITE_SHORT,  /* fwrite writes half of its elements and fails: EIO */
    IOF_FWRITE_ENOSPC, /* fwrite writes nothing: ENOSPC */
    IOF_FFLUSH,        /* fflush fails: ENOSPC */
    IOF_FSYNC,         /* fsync fails: EIO */
    IOF_FCLOSE,        /* fclose closes the stream and reports failure: EDQUOT */
    IOF_RENAME,        /* rename fails: EXDEV */
    IOF_KINDS
} iof_kind;

/* The name of a kind ("fwrite (short)"), and the errno it leaves. */
const char *iof_name(iof_kind kind);
int iof_errno(iof_kind kind);

/* Starts counting the wrapped calls; with nth > 0 the nth call (from 1) of kind's function
 * fails as kind says. Calls outside iof_arm / iof_disarm pass straight through. */
void iof_arm(iof_kind kind, unsigned nth);
void iof_disarm(void);

/* Calls of kind's function since iof_arm (the two fwrite kinds share one count). */
unsigned iof_calls(iof_kind kind);
/* Whether the armed failure happened, and whether a rename had already succeeded then. */
int iof_fired(void);
int iof_fired_after_rename(void);
/* Whether the failed call was an open of a directory (O_DIRECTORY). */
int iof_fired_on_directory(void);

#endif
