using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;
using static Conic.Runtime.KeptScalars;

namespace Conic.Augmentation;

/// <summary>
/// A batched RandAugment (Cubuk et al. 2020) subset for InfoMin's policy: each image draws, per slot, one of
/// identity, rotate, shear-x, translate (x or y), autocontrast, solarize or posterize at magnitude M/10.
/// Colour-strength operations are left to the colour jitter; equalize is not included.
/// </summary>
static class RandAugment
{
    const int OperationCount = 8;
    enum Operation { Identity, Rotate, ShearX, TranslateX, TranslateY, AutoContrast, Solarize, Posterize }

    /// <param name="x">float [B, C, H, W] in [0, 1].</param>
    public static Tensor Apply(Tensor x, SampleDraws random, int slots, double magnitude)
    {
        double m = magnitude / 10;
        for (int slot = 0; slot < slots; slot++)
        {
            var operation = random.RandInt(OperationCount, x.device);
            var sign = random.Bernoulli(0.5, x.device).to_type(ScalarType.Float32).mul(Kept(2)).sub(Kept(1));
            Tensor Is(Operation op) => operation.eq(Kept((long)op));
            Tensor Amount(Operation op, double scale) => where(Is(op), sign.mul(Kept(scale * m)), zeros_like(sign));

            // Geometry in one resampling: rotation (up to 30 degrees), x-shear (up to 0.3), translation (up to 20 %).
            var angle = Amount(Operation.Rotate, Math.PI / 6);
            var shear = Amount(Operation.ShearX, 0.3);
            var shiftX = Amount(Operation.TranslateX, 0.4);
            var shiftY = Amount(Operation.TranslateY, 0.4);
            var cos = angle.cos();
            var sin = angle.sin();
            var theta = stack(new[]
            {
                stack(new[] { cos, sin.neg().add(shear.mul(cos), Kept(1)), shiftX }, 1),
                stack(new[] { sin, cos.add(shear.mul(sin), Kept(1)), shiftY }, 1),
            }, 1);
            x = F.grid_sample(x, F.affine_grid(theta, x.shape, align_corners: false), padding_mode: GridSamplePaddingMode.Zeros, align_corners: false);

            var low = x.amin(new long[] { 1, 2, 3 }, keepdim: true);
            var high = x.amax(new long[] { 1, 2, 3 }, keepdim: true);
            var stretched = x.sub(low).div(high.sub(low).clamp_min(Kept(1e-3)));
            x = where(Is(Operation.AutoContrast).view(-1, 1, 1, 1), stretched, x);

            var solarized = where(x.ge(Kept(1 - 0.5 * m)), x.neg().add(Kept(1), Kept(1)), x);
            x = where(Is(Operation.Solarize).view(-1, 1, 1, 1), solarized, x);

            double levels = Math.Pow(2, 8 - Math.Round(4 * m));
            var posterized = x.mul(Kept(255 / levels)).floor_().mul_(Kept(levels / 255));
            x = where(Is(Operation.Posterize).view(-1, 1, 1, 1), posterized, x);
        }
        return x.clamp_(Kept(0), Kept(1));
    }
}
