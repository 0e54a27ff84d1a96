package pretext

import (
	"os"
	"testing"
	"time"

	"github.com/patchwise-ml/patchwise/data"
	"github.com/patchwise-ml/patchwise/nn"
)

// fashionMNIST is where Debian's dataset-fashion-mnist package puts the IDX files.
const fashionMNIST = "/usr/share/datasets/fashion-mnist"

// loadFashionMNIST returns the training and test images, or skips the test
// when the package is not installed.
func loadFashionMNIST(t *testing.T) (train, test *data.LabeledImages) {
	t.Helper()
	if _, err := os.Stat(fashionMNIST); err != nil {
		t.Skipf("Fashion-MNIST not found at %s: apt-get install dataset-fashion-mnist", fashionMNIST)
	}
	trf, tef, err := data.FindIDX(fashionMNIST)
	if err != nil {
		t.Fatal(err)
	}
	if train, err = data.LoadIDXPair(trf.Images, trf.Labels); err != nil {
		t.Fatal(err)
	}
	if test, err = data.LoadIDXPair(tef.Images, tef.Labels); err != nil {
		t.Fatal(err)
	}
	return train, test
}

// fillBatch writes images idx of src into x [len(idx), H, W, 1], scaled to
// [0, 1] and standardised with mean and std, and their labels into y.
func fillBatch(x *nn.Tensor, y []int, src *data.LabeledImages, idx []int, mean, std float32) {
	per := src.H * src.W
	for b, i := range idx {
		dst := x.Data[b*per : (b+1)*per]
		for j, p := range src.Pixels[i*per : (i+1)*per] {
			dst[j] = (float32(p)/255 - mean) / std
		}
		y[b] = int(src.Labels[i])
	}
}

// TestClassifierLearnsFashionMNIST trains the reference classifier at a
// quarter of the reference width on real Fashion-MNIST and requires at least
// 80 % test accuracy: the end-to-end proof that layers, losses, backprop and
// the optimiser work together.
func TestClassifierLearnsFashionMNIST(t *testing.T) {
	if testing.Short() {
		t.Skip("trains for a minute or more; skipped with -short")
	}
	train, test := loadFashionMNIST(t)
	const (
		trainN, epochs, batch = 20000, 2, 64
		mean, std             = 0.286, 0.353
	)
	rng, _ := nn.NewRNG(1)
	model := NewClassifier(EncoderConfig{Channels: 1, Widths: []int{8, 16, 32, 64}}, 10, rng)
	params := model.Params()
	opt := nn.NewSGD(params, 0.9, 5e-4, true)
	steps := epochs * trainN / batch
	sched := nn.WarmupCosine{Base: 0.05, Final: 0.0005, Warmup: 50, Total: steps}
	x, y := nn.NewTensor(batch, train.H, train.W, 1), make([]int, batch)
	start, step := time.Now(), 0
	for e := 0; e < epochs; e++ {
		perm := rng.Perm(trainN)
		for lo := 0; lo+batch <= trainN; lo += batch {
			fillBatch(x, y, train, perm[lo:lo+batch], mean, std)
			nn.ZeroGrads(params)
			m := model.Step(Batch{Views: []*nn.Tensor{x}, Labels: y}, true)
			opt.Step(sched.At(step))
			step++
			if step%100 == 0 {
				t.Logf("epoch %d step %d loss %.3f acc %.2f", e, step, m.Loss, m.Values["acc"])
			}
		}
	}
	// Evaluate on the whole test split in evaluation mode (running statistics).
	const evalBatch = 500
	ex, ey := nn.NewTensor(evalBatch, test.H, test.W, 1), make([]int, evalBatch)
	correct := 0.0
	for lo := 0; lo < test.N; lo += evalBatch {
		idx := make([]int, evalBatch)
		for i := range idx {
			idx[i] = lo + i
		}
		fillBatch(ex, ey, test, idx, mean, std)
		correct += model.Step(Batch{Views: []*nn.Tensor{ex}, Labels: ey}, false).Values["acc"] * evalBatch
	}
	acc := correct / float64(test.N)
	t.Logf("test accuracy %.4f after %d steps in %v", acc, step, time.Since(start).Round(time.Second))
	if acc < 0.80 {
		t.Fatalf("test accuracy %.4f, want at least 0.80", acc)
	}
}
