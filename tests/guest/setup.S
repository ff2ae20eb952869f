/*
 * Setup sectors of guest.bzImage: boot sector with the Linux setup header
 * at 0x1f1, and one more sector holding a real-mode entry for loaders that
 * start the kernel in real mode (e.g. QEMU's linuxboot option ROM).
 * setup_sects, syssize and init_size are filled in by mkbzimage.
 *
 * Linked at 0 and written out as a flat binary: symbol values are offsets
 * from the start of the setup, which is where the loader's DS points.
 */

#include "guest.h"

#define LOADED_HIGH	0x01
#define XLF_KERNEL_64	0x01

	.code16
	.text
	.globl _start
_start:
	.org	0x1f1
setup_sects:		.byte	0		/* mkbzimage */
root_flags:		.word	0
syssize:		.long	0		/* mkbzimage */
ram_size:		.word	0
vid_mode:		.word	0xffff		/* NORMAL_VGA */
root_dev:		.word	0
boot_flag:		.word	0xaa55
	/* 0x200: real-mode entry; its offset byte gives the header's end */
			.byte	0xeb, start_of_setup - header
header:			.ascii	"HdrS"
version:		.word	0x020f
realmode_swtch:		.long	0
start_sys_seg:		.word	0
kernel_version:		.word	version_string - _start - 0x200
type_of_loader:		.byte	0
loadflags:		.byte	LOADED_HIGH
setup_move_size:	.word	0
code32_start:		.long	IMAGE_BASE
ramdisk_image:		.long	0
ramdisk_size:		.long	0
bootsect_kludge:	.long	0
heap_end_ptr:		.word	0
ext_loader_ver:		.byte	0
ext_loader_type:	.byte	0
cmd_line_ptr:		.long	0
initrd_addr_max:	.long	0x7fffffff
kernel_alignment:	.long	0x200000
relocatable_kernel:	.byte	0
min_alignment:		.byte	21
xloadflags:		.word	XLF_KERNEL_64
cmdline_size:		.long	2047
hardware_subarch:	.long	0
hardware_subarch_data:	.quad	0
payload_offset:		.long	0
payload_length:		.long	0
setup_data:		.quad	0
pref_address:		.quad	IMAGE_BASE
init_size:		.long	0		/* mkbzimage */
handover_offset:	.long	0
kernel_info_offset:	.long	KERNEL_INFO_OFFSET

/*
 * Real mode, CS = DS + 0x20, DS = the setup segment (boot_params).  Switch
 * to flat 32-bit protected mode and enter the image's 32-bit entry with the
 * Linux 32-bit protocol: ESI = boot_params, CS = 0x10, DS = ES = SS = 0x18.
 */
start_of_setup:
	cli
	xorl	%esi, %esi
	movw	%ds, %si
	shll	$4, %esi			/* linear address of boot_params */
	leal	setup_gdt(%esi), %eax
	movl	%eax, setup_gdt_desc + 2	/* the GDT moves with the setup */
	lgdtl	setup_gdt_desc
	movl	%cr0, %eax
	orb	$1, %al
	movl	%eax, %cr0
	movw	$0x18, %ax
	movw	%ax, %ds
	movw	%ax, %es
	movw	%ax, %ss
	ljmpl	$0x10, $IMAGE_BASE

	.balign	8
setup_gdt:
	.quad	0
	.quad	0
	.quad	0x00cf9b000000ffff		/* 0x10: flat 32-bit code */
	.quad	0x00cf93000000ffff		/* 0x18: flat data */
setup_gdt_end:
setup_gdt_desc:
	.word	setup_gdt_end - setup_gdt - 1
	.long	0				/* set at run time */

version_string:
	.asciz	"ember test guest"

	.org	0x400				/* setup_sects = 1 */

	.section .note.GNU-stack, "", @progbits
