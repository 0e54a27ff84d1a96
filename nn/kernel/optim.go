package kernel

import "math"

// The optimiser updates round every product and sum to float32 on its own,
// in the order written (explicit conversions keep the compiler from
// fusing them), so the vector paths give the same bits as the Go loops.

// SGDStep applies one step of SGD to the parameters w with gradient g:
// d = g + wd·w; with momentum (v not nil), v = mu·v + d and d = v, or
// d + mu·v with nesterov; then w −= lr·d. g and v are at least as long
// as w.
func SGDStep(w, g, v []float32, lr, wd, mu float32, nesterov bool) {
	g = g[:len(w)]
	if v != nil {
		v = v[:len(w)]
	}
	l, h := vecPrefix(len(w))
	if h > 0 {
		var vp *float32
		if v != nil {
			vp = &v[0]
		}
		if l == levelAVX512 {
			sgdAVX512(&w[0], &g[0], vp, h, lr, wd, mu, nesterov)
		} else {
			sgdAVX2(&w[0], &g[0], vp, h, lr, wd, mu, nesterov)
		}
	}
	for j := h; j < len(w); j++ {
		d := g[j] + float32(wd*w[j])
		if v != nil {
			vj := float32(mu*v[j]) + d
			v[j] = vj
			if nesterov {
				d += float32(mu * vj)
			} else {
				d = vj
			}
		}
		w[j] -= float32(lr * d)
	}
}

// AdamWStep applies one step of AdamW to w with gradient g and moments m
// and v (all of w's length at least): m = b1·m + a1·g;
// v = b2·v + (a2·g)·g; w = w·decay − (step·m)/denom with
// denom = float32(√v/sqrtC2 + eps) computed in float64. The caller folds
// the bias corrections into step and sqrtC2, and the weight decay into
// decay.
func AdamWStep(w, g, m, v []float32, b1, b2, a1, a2, step, decay float32, sqrtC2, eps float64) {
	g, m, v = g[:len(w)], m[:len(w)], v[:len(w)]
	l, h := vecPrefix(len(w))
	if h > 0 {
		if l == levelAVX512 {
			adamwAVX512(&w[0], &g[0], &m[0], &v[0], h, b1, b2, a1, a2, step, decay, sqrtC2, eps)
		} else {
			adamwAVX2(&w[0], &g[0], &m[0], &v[0], h, b1, b2, a1, a2, step, decay, sqrtC2, eps)
		}
	}
	for j := h; j < len(w); j++ {
		mj := float32(b1*m[j]) + float32(a1*g[j])
		vj := float32(b2*v[j]) + float32(float32(a2*g[j])*g[j])
		m[j], v[j] = mj, vj
		denom := float32(math.Sqrt(float64(vj))/sqrtC2 + eps)
		w[j] = float32(w[j]*decay) - float32(step*mj)/denom
	}
}
