/*
 * ember test guest: entry points, mode switches, GDT, page tables and the
 * AP start-up code.  Every path ends in guest_main(kind, info) (guest.c),
 * except the APs, which only record themselves and halt.
 *
 * Entry points (all linked into one image at 0x100000):
 *   startup_32   image+0x000  bzImage 32-bit protocol: ESI = boot_params
 *   startup_64   image+0x200  bzImage 64-bit protocol: RSI = boot_params
 *   elf64_entry  e_entry      64-bit ELF entry:       RSI = boot_params
 *   pvh_entry    PVH note     32-bit, paging off:     EBX = hvm_start_info
 *
 * Kept short on purpose: under an emulating hypervisor every instruction
 * costs microseconds, so the page tables and GDT are pre-built data and
 * nothing is computed that could be assembled.
 */

#include "guest.h"

#define SEL_CODE64	0x08
#define SEL_DATA	0x10
#define SEL_CODE32	0x18

#define MSR_EFER	0xc0000080
#define EFER_LME	0x100
#define CR4_PAE		0x20
/* PG | NE | ET | MP | PE; clears CD/NW left set by INIT. */
#define CR0_LONG	0x80000033

/* Page-table entry bits; A and D pre-set so walks never write them. */
#define PTE_P		0x001
#define PTE_RW		0x002
#define PTE_PWT		0x008
#define PTE_PCD		0x010
#define PTE_A		0x020
#define PTE_D		0x040
#define PTE_PS		0x080
#define PTE_TABLE	(PTE_P | PTE_RW | PTE_A)
#define PTE_2M		(PTE_P | PTE_RW | PTE_A | PTE_D | PTE_PS)
#define PTE_2M_MMIO	(PTE_2M | PTE_PWT | PTE_PCD)

/* ------------------------------------------------------------------ */
/* Head of the image: fixed offsets required by the bzImage protocol.  */

	.section .head, "ax"
	.code32
	.globl startup_32
startup_32:			/* image+0: 32-bit boot protocol */
	mov	$KIND_BZIMAGE, %edi
	jmp	enter_long_mode_lgdt

	/* kernel_info, referenced by the setup header (kernel_info_offset) */
	.org	KERNEL_INFO_OFFSET
	.globl kernel_info
kernel_info:
	.ascii	"LToP"
	.long	16		/* size */
	.long	16		/* size_total */
	.long	0		/* setup_type_max */

	.org	0x200
	.code64
	.globl startup_64
startup_64:			/* image+0x200: 64-bit boot protocol */
	mov	$KIND_BZIMAGE, %edi
	mov	$pml4, %eax	/* as enter64, inlined: saves the jump */
	mov	%rax, %cr3
	mov	$stack_top, %esp
	call	guest_main

/* ------------------------------------------------------------------ */

	.text
	.code64
	.globl elf64_entry
elf64_entry:			/* e_entry: 64-bit, RSI = boot_params */
	mov	$KIND_ELF64, %edi
enter64:
	mov	$pml4, %eax	/* own page tables and stack at once */
	mov	%rax, %cr3
	mov	$stack_top, %esp
	call	guest_main	/* (kind, boot_params); never returns */

	.code32
	.globl pvh_entry
pvh_entry:			/* PVH: 32-bit flat, paging off, EBX = start_info */
	mov	%ebx, %esi
	xor	%edi, %edi	/* KIND_PVH */
enter_long_mode_lgdt:
	lgdt	gdt_desc
enter_long_mode:		/* the APs join here with their GDT loaded */
	mov	$SEL_DATA, %eax
	mov	%eax, %ds
	mov	%eax, %es
	mov	%eax, %ss
	mov	$CR4_PAE, %eax
	mov	%eax, %cr4
	mov	$pml4, %eax
	mov	%eax, %cr3
	mov	$MSR_EFER, %ecx
	mov	$EFER_LME, %eax
	xor	%edx, %edx
	wrmsr
	mov	$CR0_LONG, %eax
	mov	%eax, %cr0
	ljmp	$SEL_CODE64, $long64

	.code64
long64:
	cmp	$KIND_AP, %edi
	je	ap_main
	mov	%esi, %esi	/* upper halves are undefined after the switch */
	mov	$stack_top, %esp
	call	guest_main

/*
 * Application processor, now in long mode.  Records its APIC ID in
 * ap_seen[] (the store is visible before the locked increment: x86 keeps
 * stores in order) and halts for good.  Needs no stack.
 */
ap_main:
	mov	$1, %eax
	cpuid
	shr	$24, %ebx
	movb	$1, ap_seen(%rbx)
	lock incl ap_count
1:	cli
	hlt
	jmp	1b

/* ------------------------------------------------------------------ */
/*
 * Real-mode AP trampoline.  guest.c copies [ap_trampoline,
 * ap_trampoline_end) to AP_TRAMPOLINE (0x10000); STARTUP vector 0x10
 * starts the AP there with CS=0x1000, IP=0.  Position-independent: it only
 * uses offsets from its own start and absolute addresses in the image.
 */
	.section .rodata
	.code16
	.globl ap_trampoline, ap_trampoline_end
ap_trampoline:
	cli
	lgdtl	%cs:(ap_gdt_desc - ap_trampoline)
	mov	%cr0, %eax
	or	$1, %al
	mov	%eax, %cr0
	mov	$KIND_AP, %edi
	ljmpl	$SEL_CODE32, $enter_long_mode
	.balign	2
ap_gdt_desc:
	.word	gdt_end - gdt - 1
	.long	gdt
ap_trampoline_end:
	.code64

/* ------------------------------------------------------------------ */

	.data
	.balign	8
gdt:				/* accessed bits pre-set: loads never write it */
	.quad	0
	.quad	0x00af9b000000ffff	/* 0x08: 64-bit code */
	.quad	0x00cf93000000ffff	/* 0x10: flat data */
	.quad	0x00cf9b000000ffff	/* 0x18: flat 32-bit code */
gdt_end:
	.balign	2
gdt_desc:
	.word	gdt_end - gdt - 1
	.long	gdt

/*
 * Identity map of 0-4 GiB with 2 MiB pages, pre-initialised.  3-4 GiB
 * (boot timer, IOAPIC, LAPIC) is uncached.
 */
	.section .data.pagetables, "aw"
	.balign	4096
	.globl pml4
pml4:
	.quad	pdpt + PTE_TABLE
	.fill	511, 8, 0
pdpt:
	.quad	pd0 + PTE_TABLE
	.quad	pd1 + PTE_TABLE
	.quad	pd2 + PTE_TABLE
	.quad	pd3 + PTE_TABLE
	.fill	508, 8, 0
pd0:
	.set	pt_addr, 0
	.rept	512 * 3
	.quad	pt_addr + PTE_2M
	.set	pt_addr, pt_addr + 0x200000
	.endr
pd3:
	.rept	512
	.quad	pt_addr + PTE_2M_MMIO
	.set	pt_addr, pt_addr + 0x200000
	.endr
	.set	pd1, pd0 + 4096
	.set	pd2, pd0 + 8192

	.section .bss.stack, "aw", @nobits
	.balign	16
	.space	STACK_SIZE
	.globl stack_top
stack_top:

	.section .note.GNU-stack, "", @progbits
