package nn

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// Param is a named tensor of a model's state. A trainable parameter has a
// Grad of the same shape; a buffer (batch-norm running statistics) has none.
type Param struct {
	Name  string  // stable dotted key, e.g. "encoder.block1.conv.weight"
	Value *Tensor // the values
	Grad  *Tensor // gradient accumulated by Backward; nil for buffers
	Decay bool    // whether weight decay applies (weights yes; biases and norm parameters no)

	reducer Reducer // on a batch norm's running mean: its statistics are synchronised (SyncBatchNorm)
}

func newParam(name string, decay bool, shape ...int) *Param {
	return &Param{Name: name, Value: NewTensor(shape...), Grad: NewTensor(shape...), Decay: decay}
}

func newBuffer(name string, shape ...int) *Param {
	return &Param{Name: name, Value: NewTensor(shape...)}
}

// ZeroGrads sets the gradients of ps to zero.
func ZeroGrads(ps []*Param) {
	for _, p := range ps {
		if p.Grad != nil {
			p.Grad.Zero()
		}
	}
}

// Unique returns ps without repeats (the same *Param listed twice, as with
// tied weights), keeping the first occurrence.
func Unique(ps []*Param) []*Param {
	seen := make(map[*Param]bool, len(ps))
	out := ps[:0:0]
	for _, p := range ps {
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out
}

// CheckNames returns an error if two distinct parameters share a name.
func CheckNames(ps []*Param) error {
	seen := make(map[string]*Param, len(ps))
	for _, p := range ps {
		if q, ok := seen[p.Name]; ok && q != p {
			return fmt.Errorf("nn: two parameters named %q", p.Name)
		}
		seen[p.Name] = p
	}
	return nil
}

// NewRNG returns the seeded random source that every random draw in a run
// comes from. Its state can be saved with MarshalBinary on the *rand.PCG.
func NewRNG(seed uint64) (*rand.Rand, *rand.PCG) {
	src := rand.NewPCG(seed, 0x9e3779b97f4a7c15)
	return rand.New(src), src
}

// KaimingNormal fills t with draws from N(0, 2/fanIn), He et al.'s
// initialisation for layers followed by ReLU.
func KaimingNormal(t *Tensor, fanIn int, rng *rand.Rand) {
	std := math.Sqrt(2 / float64(fanIn))
	for i := range t.Data {
		t.Data[i] = float32(rng.NormFloat64() * std)
	}
}

// Uniform fills t with draws from U(−bound, bound).
func Uniform(t *Tensor, bound float64, rng *rand.Rand) {
	for i := range t.Data {
		t.Data[i] = float32((2*rng.Float64() - 1) * bound)
	}
}
