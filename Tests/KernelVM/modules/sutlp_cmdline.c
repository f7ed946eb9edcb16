// SPDX-License-Identifier: GPL-2.0
/*
 * sutlp_cmdline - Suture kernel-tier test livepatch (vmlinux target).
 *
 * Replaces cmdline_proc_show() (fs/proc/cmdline.c, the ->show of /proc/cmdline) with a function that
 * prints SUTLP_CMDLINE_MARKER, so the guest sees whether the patch is live by reading /proc/cmdline.
 * Loaded and enabled by `suture apply` (finit_module: the init calls klp_enable_patch()); disabled
 * through /sys/kernel/livepatch/sutlp_cmdline/enabled and removed with delete_module by Suture.
 */
#include <linux/module.h>
#include <linux/kernel.h>
#include <linux/livepatch.h>
#include <linux/seq_file.h>

#define SUTLP_CMDLINE_MARKER "SUTLP-CMDLINE-PATCHED"

static int sutlp_cmdline_show(struct seq_file *m, void *v)
{
	seq_printf(m, "%s\n", SUTLP_CMDLINE_MARKER);
	return 0;
}

static struct klp_func sutlp_cmdline_funcs[] = {
	{ .old_name = "cmdline_proc_show", .new_func = sutlp_cmdline_show, },
	{ }
};

static struct klp_object sutlp_cmdline_objs[] = {
	{ .name = NULL /* vmlinux */, .funcs = sutlp_cmdline_funcs, },
	{ }
};

static struct klp_patch sutlp_cmdline_patch = {
	.mod = THIS_MODULE,
	.objs = sutlp_cmdline_objs,
};

static int __init sutlp_cmdline_init(void)
{
	return klp_enable_patch(&sutlp_cmdline_patch);
}

static void __exit sutlp_cmdline_exit(void)
{
}

module_init(sutlp_cmdline_init);
module_exit(sutlp_cmdline_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Suture test livepatch: /proc/cmdline shows a marker while live");
MODULE_INFO(livepatch, "Y");
