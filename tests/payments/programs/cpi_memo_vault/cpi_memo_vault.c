/* cpi_memo_vault: a tiny sBPF (SBPFv0) program for tests.
 * A "vault" PDA (seeds ["vault", bump], this program) signs two CPIs, like a Squads vault transaction:
 *   1. SPL Token transferChecked(source, mint, destination, authority = vault PDA)
 *   2. SPL Memo(memo text), with the vault PDA as the memo's signer
 * Accounts: 0 vault PDA, 1 source token account (w), 2 mint, 3 destination token account (w),
 *           4 token program, 5 memo program.
 * Data: [bump u8][amount u64 LE][decimals u8][memo utf-8 ...]
 * Freestanding C for clang -target bpf; no libc, no .rodata/.data, scratch memory on the heap region. */
typedef unsigned long u64;
typedef unsigned int u32;
typedef unsigned char u8;

typedef struct { u8 *key; u64 *lamports; u64 data_len; u8 *data; u8 *owner; u64 rent_epoch;
                 u8 is_signer; u8 is_writable; u8 executable; } SolAccountInfo;
typedef struct { u8 *pubkey; u8 is_writable; u8 is_signer; } SolAccountMeta;
typedef struct { u8 *program_id; SolAccountMeta *accounts; u64 account_len; u8 *data; u64 data_len; } SolInstruction;
typedef struct { const u8 *addr; u64 len; } SolSignerSeed;
typedef struct { const SolSignerSeed *addr; u64 len; } SolSignerSeeds;

extern u64 sol_invoke_signed_c(const SolInstruction *, const SolAccountInfo *, int, const SolSignerSeeds *, int);
extern void sol_log_(const char *, u64);

#define MAX_ACCOUNTS 8
#define MAX_PERMITTED_DATA_INCREASE (1024 * 10)
#define HEAP ((u8 *)0x300000000UL)

struct Scratch {
  SolAccountInfo infos[MAX_ACCOUNTS];
  SolAccountMeta metas[4];
  SolInstruction ix;
  u8 transfer_data[16];
  u8 seed_vault[8];
  u8 seed_bump[8];
  SolSignerSeed seed[2];
  SolSignerSeeds seeds;
};

u64 entrypoint(const u8 *input) {
  struct Scratch *s = (struct Scratch *)HEAP;
  u64 n = *(const u64 *)input;
  const u8 *p = input + 8;
  if (n < 6 || n > MAX_ACCOUNTS) return 1;
  for (u64 i = 0; i < n; i++) {
    u8 dup = *p;
    if (dup != 0xff) { /* duplicate of an earlier account */
      s->infos[i] = s->infos[dup];
      p += 8;
      continue;
    }
    SolAccountInfo *a = &s->infos[i];
    a->is_signer = p[1];
    a->is_writable = p[2];
    a->executable = p[3];
    p += 8;
    a->key = (u8 *)p; p += 32;
    a->owner = (u8 *)p; p += 32;
    a->lamports = (u64 *)p; p += 8;
    a->data_len = *(const u64 *)p; p += 8;
    a->data = (u8 *)p;
    p += a->data_len + MAX_PERMITTED_DATA_INCREASE;
    p = (const u8 *)(((u64)p + 7) & ~7UL);
    a->rent_epoch = *(const u64 *)p; p += 8;
  }
  u64 data_len = *(const u64 *)p; p += 8;
  const u8 *data = p;
  if (data_len < 10) return 2;

  /* signer seeds ["vault", bump] */
  volatile u8 *sv = s->seed_vault;
  sv[0] = 'v'; sv[1] = 'a'; sv[2] = 'u'; sv[3] = 'l'; sv[4] = 't';
  s->seed_bump[0] = data[0];
  s->seed[0].addr = s->seed_vault; s->seed[0].len = 5;
  s->seed[1].addr = s->seed_bump;  s->seed[1].len = 1;
  s->seeds.addr = s->seed; s->seeds.len = 2;

  /* 1. transferChecked: tag 12, amount u64, decimals u8 */
  s->transfer_data[0] = 12;
  for (int k = 0; k < 9; k++) s->transfer_data[1 + k] = data[1 + k];
  s->metas[0].pubkey = s->infos[1].key; s->metas[0].is_writable = 1; s->metas[0].is_signer = 0;
  s->metas[1].pubkey = s->infos[2].key; s->metas[1].is_writable = 0; s->metas[1].is_signer = 0;
  s->metas[2].pubkey = s->infos[3].key; s->metas[2].is_writable = 1; s->metas[2].is_signer = 0;
  s->metas[3].pubkey = s->infos[0].key; s->metas[3].is_writable = 0; s->metas[3].is_signer = 1;
  s->ix.program_id = s->infos[4].key;
  s->ix.accounts = s->metas; s->ix.account_len = 4;
  s->ix.data = s->transfer_data; s->ix.data_len = 10;
  u64 r = sol_invoke_signed_c(&s->ix, s->infos, (int)n, &s->seeds, 1);
  if (r) return r;

  /* 2. memo, signed by the vault PDA */
  if (data_len > 10) {
    s->metas[0].pubkey = s->infos[0].key; s->metas[0].is_writable = 0; s->metas[0].is_signer = 1;
    s->ix.program_id = s->infos[5].key;
    s->ix.accounts = s->metas; s->ix.account_len = 1;
    s->ix.data = (u8 *)data + 10; s->ix.data_len = data_len - 10;
    r = sol_invoke_signed_c(&s->ix, s->infos, (int)n, &s->seeds, 1);
    if (r) return r;
  }
  return 0;
}
