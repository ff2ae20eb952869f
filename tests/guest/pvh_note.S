/*
 * The Xen ELF note that makes guest-pvh.elf a PVH kernel:
 * XEN_ELFNOTE_PHYS32_ENTRY (18), name "Xen", desc = the 32-bit physical
 * address of pvh_entry (4 bytes).  Linked only into guest-pvh.elf.
 */
#define XEN_ELFNOTE_PHYS32_ENTRY 18

	.section .note.Xen, "a", @note
	.balign	4
	.long	4			/* namesz: "Xen\0" */
	.long	4			/* descsz */
	.long	XEN_ELFNOTE_PHYS32_ENTRY
	.asciz	"Xen"
	.balign	4
	.long	pvh_entry

	.section .note.GNU-stack, "", @progbits
