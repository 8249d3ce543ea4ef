# A line-by-line numpy port of implicit 0.7's CPU conjugate-gradient ALS
# (implicit/cpu/_als.pyx least_squares_cg: C = alpha*count, 3 CG steps,
# uniform [0, 0.01) start) with the same per-user 15% holdout and metrics as
# internal/als, so setlist's quality can be compared with implicit's algorithm
# on this machine, where the implicit package itself cannot be installed.
# Needs Debian's python3-numpy and python3-scipy; reads the shared data set
# (../shared/data/..., relative to the repository; SETLIST_DATA overrides).
#
#   /usr/bin/python3 docs/reference/implicit_cg_reference.py FACTORS REG ALPHA ITERATIONS
#   e.g. 150 0.051 1 15  ->  p@5=0.1443 ndcg@5=0.1604 (docs/BENCHMARKS.md)
import csv, gzip, os, sys, time
import numpy as np, scipy.sparse as sp
factors=int(sys.argv[1]); reg=float(sys.argv[2]); alpha=float(sys.argv[3]); iters=int(sys.argv[4])
users={}; items={}; rows=[]; cols=[]; vals=[]
with gzip.open(os.environ.get('SETLIST_DATA','../shared/data/spotify-playlists/interactions.csv.gz'),'rt') as f:
    r=csv.reader(f); next(r)
    for u,a,t,c in r:
        rows.append(users.setdefault(u,len(users))); cols.append(items.setdefault((a,t),len(items))); vals.append(float(c))
M=sp.csr_matrix((vals,(rows,cols)),shape=(len(users),len(items)),dtype=np.float32); M.sum_duplicates()
rng=np.random.default_rng(1)
tr_r=[];tr_c=[];tr_v=[];te_r=[];te_c=[]
for u in range(M.shape[0]):
    s,e=M.indptr[u],M.indptr[u+1]; idx=np.arange(s,e)
    n=len(idx); nt=min(n-1,int(round(0.15*n))) if n>=2 else 0
    perm=rng.permutation(n); test=set(perm[:nt].tolist())
    for j in range(n):
        if j in test: te_r.append(u); te_c.append(M.indices[s+j])
        else: tr_r.append(u); tr_c.append(M.indices[s+j]); tr_v.append(M.data[s+j])
train=sp.csr_matrix((tr_v,(tr_r,tr_c)),shape=M.shape,dtype=np.float32)
test=sp.csr_matrix((np.ones(len(te_r),np.float32),(te_r,te_c)),shape=M.shape)
Cui=(alpha*train).tocsr(); Ciu=Cui.T.tocsr()
X=(np.random.default_rng(0).random((M.shape[0],factors))*0.01).astype(np.float32)
Y=(np.random.default_rng(1).random((M.shape[1],factors))*0.01).astype(np.float32)
def cg(Cui,X,Y,reg,steps=3):
    YtY=Y.T@Y+reg*np.eye(factors,dtype=np.float32)
    for u in range(X.shape[0]):
        s,e=Cui.indptr[u],Cui.indptr[u+1]
        idx=Cui.indices[s:e]; c=Cui.data[s:e]; Yu=Y[idx]; x=X[u]
        r=-YtY@x + ((c-(c-1)*(Yu@x))[:,None]*Yu).sum(0)
        p=r.copy(); rs=r@r
        for _ in range(steps):
            if rs<1e-20: break
            Ap=YtY@p + (((c-1)*(Yu@p))[:,None]*Yu).sum(0)
            a=rs/(p@Ap); x=x+a*p; r=r-a*Ap; rn=r@r; p=r+(rn/rs)*p; rs=rn
        X[u]=x
t0=time.time()
for it in range(iters):
    cg(Cui,X,Y,reg); cg(Ciu,Y,X,reg)
print('train s',time.time()-t0, file=sys.stderr)
prec=0;nd=0;n=0;pd=0;rel=0
S=X@Y.T
for u in range(M.shape[0]):
    t=test.indices[test.indptr[u]:test.indptr[u+1]]
    if len(t)==0: continue
    sc=S[u].copy(); sc[train.indices[train.indptr[u]:train.indptr[u+1]]]=-np.inf
    top=np.argpartition(-sc,5)[:5]; top=top[np.argsort(-sc[top])]
    ts=set(t.tolist()); h=[1 if i in ts else 0 for i in top]
    m=min(5,len(t)); idcg=sum(1/np.log2(i+2) for i in range(m))
    prec+=sum(h)/5; nd+=sum(h[i]/np.log2(i+2) for i in range(5))/idcg; n+=1; pd+=m; rel+=sum(h)
print(f'factors={factors} reg={reg} alpha={alpha}: users={n} p@5={prec/n:.4f} implicit-p@5={rel/pd:.4f} ndcg@5={nd/n:.4f}')
