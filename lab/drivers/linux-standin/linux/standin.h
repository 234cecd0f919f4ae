/* SPDX-License-Identifier: GPL-2.0 */
/*
 * STAND-IN for the Linux kernel API the sample guest driver uses: NOT the kernel's
 * headers. See ../README.md. Every function declared without a body is implemented by
 * the emulator's kernel shim (src/devices/wasm/linux-shim.ts) as an import.
 */
#ifndef LINUX_STANDIN_H
#define LINUX_STANDIN_H

#include <stddef.h>
#include <stdarg.h>

/* ---- Base types and helpers (types.h, compiler.h, kernel.h) ------------------ */
typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long long u64;
typedef signed char s8;
typedef short s16;
typedef int s32;
typedef long long s64;
typedef _Bool bool;
typedef long ssize_t;
typedef long long loff_t;
typedef unsigned int gfp_t;
#define true 1
#define false 0
#define __user
#define __init
#define __exit
#define __must_check __attribute__((warn_unused_result))
#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)
#define READ_ONCE(x) (*(const volatile __typeof__(x) *)&(x))
#define WRITE_ONCE(x, v) (*(volatile __typeof__(x) *)&(x) = (v))
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define container_of(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))
#define min(a, b) ((a) < (b) ? (a) : (b))
#define max(a, b) ((a) > (b) ? (a) : (b))
#define min3(a, b, c) min(min(a, b), c)
#define min_t(t, a, b) min((t)(a), (t)(b))
#define max_t(t, a, b) max((t)(a), (t)(b))
#ifndef KBUILD_MODNAME /* Kbuild passes it; a recipe may (-DKBUILD_MODNAME=...) */
#define KBUILD_MODNAME "vmbus_sample_guest"
#endif

#define EPERM 1
#define ENOENT 2
#define EIO 5
#define ENOMEM 12
#define EFAULT 14
#define EBUSY 16
#define ENODEV 19
#define EINVAL 22
#define ENOSPC 28
#define EAGAIN 11
#define EOPNOTSUPP 95
#define ETIMEDOUT 110

int scnprintf(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int snprintf(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int _printk(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
#define pr_info(...) _printk(__VA_ARGS__)
#define pr_err(...) _printk(__VA_ARGS__)
#define pr_warn(...) _printk(__VA_ARGS__)
void *memcpy(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);

/* ---- Modules ------------------------------------------------------------------- */
struct module;
#define THIS_MODULE ((struct module *)0)
/* The shim calls the module's init and exit through these two exports. */
#define module_init(fn) \
	__attribute__((export_name("shim_linux_init"))) int shim_linux_init(void) { return fn(); }
#define module_exit(fn) \
	__attribute__((export_name("shim_linux_exit"))) void shim_linux_exit(void) { fn(); }
#define module_param(name, type, perm) \
	__attribute__((export_name("shim_param_" #name))) void *shim_param_##name(void) { return &name; }
#define MODULE_PARM_DESC(name, text)
#define MODULE_DEVICE_TABLE(bus, table)
#define MODULE_DESCRIPTION(text)
#define MODULE_LICENSE(text)
#define KERNEL_VERSION(a, b, c) (((a) << 16) + ((b) << 8) + (c))
#define LINUX_VERSION_CODE KERNEL_VERSION(6, 1, 0)

/* ---- Lists (list.h) --------------------------------------------------------------- */
struct list_head {
	struct list_head *next, *prev;
};
#define LIST_HEAD_INIT(name) { &(name), &(name) }
#define LIST_HEAD(name) struct list_head name = LIST_HEAD_INIT(name)
static inline void INIT_LIST_HEAD(struct list_head *l) { l->next = l->prev = l; }
static inline int list_empty(const struct list_head *h) { return h->next == h; }
static inline void list_add_tail(struct list_head *n, struct list_head *h)
{
	struct list_head *prev = h->prev;

	n->next = h;
	n->prev = prev;
	prev->next = n;
	h->prev = n;
}
static inline void list_del(struct list_head *e)
{
	e->prev->next = e->next;
	e->next->prev = e->prev;
	/* The kernel poisons a deleted entry: a second list_del faults. */
	e->next = (struct list_head *)0x100;
	e->prev = (struct list_head *)0x122;
}
#define list_entry(ptr, type, member) container_of(ptr, type, member)
#define list_first_entry_or_null(head, type, member) \
	(list_empty(head) ? NULL : list_entry((head)->next, type, member))
#define list_for_each_entry(pos, head, member)                                     \
	for (pos = list_entry((head)->next, __typeof__(*pos), member); &pos->member != (head); \
	     pos = list_entry(pos->member.next, __typeof__(*pos), member))
#define list_for_each_entry_safe(pos, n, head, member)                               \
	for (pos = list_entry((head)->next, __typeof__(*pos), member),                 \
	     n = list_entry(pos->member.next, __typeof__(*pos), member);               \
	     &pos->member != (head);                                                   \
	     pos = n, n = list_entry(n->member.next, __typeof__(*n), member))

/* ---- Atomics (atomic.h) ---------------------------------------------------------- */
typedef struct {
	s64 counter;
} atomic64_t;
static inline s64 atomic64_read(const atomic64_t *v) { return READ_ONCE(v->counter); }
static inline void atomic64_set(atomic64_t *v, s64 i) { WRITE_ONCE(v->counter, i); }
static inline void atomic64_inc(atomic64_t *v) { v->counter++; }
static inline void atomic64_dec(atomic64_t *v) { v->counter--; }
typedef struct {
	long counter;
} atomic_long_t;
#define ATOMIC_LONG_INIT(i) { (i) }
static inline long atomic_long_read(const atomic_long_t *v) { return READ_ONCE(v->counter); }
static inline void atomic_long_set(atomic_long_t *v, long i) { WRITE_ONCE(v->counter, i); }

/* ---- Locks (spinlock.h, mutex.h): the shim checks their use ------------------------- */
typedef struct {
	u32 shim_id; /* 0 until first use: the shim names each lock on first sight */
} spinlock_t;
#define DEFINE_SPINLOCK(x) spinlock_t x = { 0 }
#define spin_lock_init(l) ((l)->shim_id = 0)
void spin_lock(spinlock_t *l);
void spin_unlock(spinlock_t *l);
void spin_lock_bh(spinlock_t *l);
void spin_unlock_bh(spinlock_t *l);
unsigned long shim_spin_lock_irqsave(spinlock_t *l);
void spin_unlock_irqrestore(spinlock_t *l, unsigned long flags);
#define spin_lock_irqsave(l, flags) ((flags) = shim_spin_lock_irqsave(l))
struct mutex {
	u32 shim_id;
};
#define DEFINE_MUTEX(x) struct mutex x = { 0 }
void mutex_lock(struct mutex *m);
void mutex_unlock(struct mutex *m);

/* ---- Memory (slab.h, vmalloc.h, uaccess.h) ------------------------------------------ */
#define GFP_KERNEL 0xcc0u
#define GFP_ATOMIC 0x820u
#define GFP_NOWAIT 0x800u
void *kmalloc(size_t size, gfp_t flags);
void *kzalloc(size_t size, gfp_t flags);
void kfree(const void *p);
void *vmalloc(unsigned long size);
void vfree(const void *p);
unsigned long copy_from_user(void *to, const void __user *from, unsigned long n);
unsigned long copy_to_user(void __user *to, const void *from, unsigned long n);

/* ---- Time and work (jiffies.h, workqueue.h, delay.h) -------------------------------- */
#define HZ 1000
extern volatile unsigned long jiffies;
unsigned long msecs_to_jiffies(unsigned int ms);
#define time_after(a, b) ((long)((b) - (a)) < 0)
void usleep_range(unsigned long min_us, unsigned long max_us);
struct work_struct;
typedef void (*work_func_t)(struct work_struct *work);
struct work_struct {
	work_func_t func;
	u32 shim_id;
};
struct delayed_work {
	struct work_struct work;
};
#define INIT_DELAYED_WORK(w, f) ((w)->work.func = (f), (w)->work.shim_id = 0)
#define to_delayed_work(w) container_of(w, struct delayed_work, work)
bool schedule_delayed_work(struct delayed_work *dwork, unsigned long delay);
bool cancel_delayed_work_sync(struct delayed_work *dwork);
struct workqueue_struct;
extern struct workqueue_struct *system_wq;
bool mod_delayed_work(struct workqueue_struct *wq, struct delayed_work *dwork, unsigned long delay);

/* ---- XArray (xarray.h) --------------------------------------------------------------- */
struct xarray {
	u32 shim_id;
	u32 flags;
};
#define XA_FLAGS_LOCK_BH 2u
static inline void xa_init_flags(struct xarray *xa, u32 flags) { xa->shim_id = 0; xa->flags = flags; }
int __must_check xa_insert_bh(struct xarray *xa, unsigned long index, void *entry, gfp_t gfp);
void *xa_erase(struct xarray *xa, unsigned long index);
void *xa_erase_bh(struct xarray *xa, unsigned long index);
void xa_destroy(struct xarray *xa);
void *xa_find(struct xarray *xa, unsigned long *index, unsigned long max, u32 filter);
void *xa_find_after(struct xarray *xa, unsigned long *index, unsigned long max, u32 filter);
#define XA_PRESENT 0x8000000u
#define xa_for_each(xa, index, entry)                                              \
	for (index = 0, entry = xa_find(xa, &index, ~0ul, XA_PRESENT); entry;        \
	     entry = xa_find_after(xa, &index, ~0ul, XA_PRESENT))

/* ---- Files and debugfs (fs.h, debugfs.h) --------------------------------------------- */
struct file;
struct inode;
struct dentry;
struct file_operations {
	struct module *owner;
	ssize_t (*read)(struct file *, char __user *, size_t, loff_t *);
	ssize_t (*write)(struct file *, const char __user *, size_t, loff_t *);
	loff_t (*llseek)(struct file *, loff_t, int);
	int (*open)(struct inode *, struct file *);
};
loff_t noop_llseek(struct file *file, loff_t offset, int whence);
loff_t default_llseek(struct file *file, loff_t offset, int whence);
ssize_t simple_read_from_buffer(void __user *to, size_t count, loff_t *ppos,
				const void *from, size_t available);
struct dentry *debugfs_create_dir(const char *name, struct dentry *parent);
struct dentry *debugfs_create_file(const char *name, unsigned short mode, struct dentry *parent,
				   void *data, const struct file_operations *fops);
void debugfs_remove_recursive(struct dentry *dentry);

#endif /* LINUX_STANDIN_H */
