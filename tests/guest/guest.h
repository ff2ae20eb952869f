/* Constants shared by the guest's C and assembly sources. */
#ifndef EMBER_GUEST_H
#define EMBER_GUEST_H

/* How the guest was entered (argument 1 of guest_main). */
#define KIND_PVH	0
#define KIND_ELF64	1
#define KIND_BZIMAGE	2
#define KIND_AP		3	/* internal: an application processor */

/* Link address of the image; the bzImage protected-mode part goes here. */
#define IMAGE_BASE	0x100000

/* Where the real-mode AP trampoline is copied (STARTUP vector 0x10). */
#define AP_TRAMPOLINE	0x10000
#define AP_SIPI_VECTOR	(AP_TRAMPOLINE >> 12)

/* Offset of kernel_info in the bzImage protected-mode part. */
#define KERNEL_INFO_OFFSET 0x1c0

#define STACK_SIZE	8192

#endif
