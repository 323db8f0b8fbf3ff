using static Conic.Runtime.KeptScalars;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Conic.Models;

/// <summary>
/// A Vision Transformer as timm's vit_tiny / vit_small (Dosovitskiy et al. 2021): the image cut into square patches,
/// each linearly embedded, a class token prepended, learned position embeddings added, 12 pre-norm blocks of
/// multi-head self-attention and a GELU MLP (4× wide), a final LayerNorm; the pooled features are the class token's.
/// Parameter names are timm's (cls_token, pos_embed, patch_embed.proj, blocks.0.attn.qkv, ...). The position table
/// is sized for the reference image (32 px with 4-pixel patches, 224 px with 16-pixel ones) and resampled bicubically
/// for other sizes, as timm's dynamic image size does.
/// </summary>
public sealed class VisionTransformer : Backbone
{
    readonly Parameter cls_token, pos_embed;
    readonly PatchEmbedding patch_embed;
    readonly ModuleList<TransformerBlock> blocks;
    readonly LayerNorm norm;
    readonly int _patch, _referenceGrid, _heads;

    /// <summary>Dimensions, heads and blocks of each size (timm's).</summary>
    static (int Dim, int Heads, int Depth) Size(VitSize size) => size switch
    {
        VitSize.Tiny => (192, 3, 12),
        VitSize.Small => (384, 6, 12),
        _ => throw new ArgumentException("not a ViT", nameof(size)),
    };

    /// <summary>Every LayerNorm's ε (timm's for ViTs).</summary>
    internal const double NormEpsilon = 1e-6;

    /// <summary>The patch side of <paramref name="options"/>: 4 pixels for small images, 16 for ImageNet-sized ones.</summary>
    public static int PatchSize(BackboneOptions options) => options.SmallImageStem ? 4 : 16;

    /// <summary>A randomly initialised ViT of <paramref name="options"/>' size (timm's initialisation).</summary>
    public VisionTransformer(BackboneOptions options) : base(options)
    {
        var (dim, heads, depth) = Size(options.Vit);
        (_patch, _heads) = (PatchSize(options), heads);
        _referenceGrid = (options.SmallImageStem ? 32 : 224) / _patch;
        FeatureDim = dim;
        patch_embed = new PatchEmbedding(options.InputChannels, dim, _patch);
        cls_token = Parameter(zeros(1, 1, dim));
        pos_embed = Parameter(zeros(1, 1 + _referenceGrid * _referenceGrid, dim));
        blocks = new ModuleList<TransformerBlock>(Enumerable.Range(0, depth).Select(_ => new TransformerBlock(dim, heads)).ToArray());
        norm = LayerNorm(dim, eps: NormEpsilon);
        RegisterComponents();
        // timm's truncated normal (std 0.02, cut at ±2, i.e. 100 std away) is a plain normal; TorchSharp 0.107's
        // init.trunc_normal_ fills the tensor with the std instead (mean and std swapped: every weight 0.02).
        using var noGrad = no_grad();
        init.normal_(pos_embed, std: 0.02);
        init.normal_(cls_token, std: 1e-6);
        foreach (var linear in modules().OfType<Linear>())
        {
            init.normal_(linear.weight!, std: 0.02);
            init.zeros_(linear.bias!);
        }
    }

    /// <inheritdoc/>
    public override int FeatureDim { get; }

    /// <inheritdoc/>
    public override int[] StageChannels => [FeatureDim, FeatureDim, FeatureDim, FeatureDim];
    /// <inheritdoc/>
    public override int FirstStageStride => _patch / 4;
    /// <inheritdoc/>
    public override string StemDescription => $"{_patch}-pixel patches";
    /// <inheritdoc/>
    public override string PoolingDescription => "of the class token";
    /// <inheritdoc/>
    public override string NamesAfter => "timm";
    /// <summary>Attention heads per block.</summary>
    internal int Heads => _heads;
    /// <summary>Side of the grid the position table is stored for.</summary>
    internal int ReferenceGrid => _referenceGrid;
    /// <summary>Parts for writers of other formats (ONNX).</summary>
    internal (Conv2d PatchProjection, Parameter ClassToken, Parameter PositionTable, IReadOnlyList<TransformerBlock> Blocks, LayerNorm Norm) Parts =>
        (patch_embed.Projection, cls_token, pos_embed, blocks.ToArray(), norm);

    /// <summary>The class token after the last block and norm [B, D].</summary>
    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        return Tokens(input, out _, out _)[.., 0].MoveToOuterDisposeScope();
    }

    /// <summary>The patch tokens after the last norm as a map [B, D, H / patch, W / patch].</summary>
    public override Tensor forward_features(Tensor input)
    {
        using var scope = NewDisposeScope();
        var tokens = Tokens(input, out long rows, out long columns);
        return tokens[.., 1..].transpose(1, 2).reshape(tokens.shape[0], FeatureDim, rows, columns).contiguous().MoveToOuterDisposeScope();
    }

    /// <summary>
    /// A simple pyramid from the one map (Li et al.'s ViTDet, without its learned layers): the patch map upsampled 4×
    /// and 2×, itself, and max-pooled 2×.
    /// </summary>
    public override Tensor[] forward_stages(Tensor input)
    {
        using var scope = NewDisposeScope();
        var map = forward_features(input);
        Tensor Resized(long factor) => functional.interpolate(map, size: [map.shape[2] * factor, map.shape[3] * factor], mode: InterpolationMode.Nearest);
        var stages = new[] { Resized(4), Resized(2), map, functional.max_pool2d(map, 2, 2, ceil_mode: true) };
        return stages.Select(s => s.MoveToOuterDisposeScope()).ToArray();
    }

    Tensor Tokens(Tensor input, out long rows, out long columns)
    {
        var patches = patch_embed.call(input);
        (rows, columns) = (patches.shape[2], patches.shape[3]);
        var x = patches.flatten(2).transpose(1, 2);
        x = cat([cls_token.expand(x.shape[0], -1, -1), x], 1).add(PositionEmbedding(rows, columns), Kept(1));
        foreach (var block in blocks) x = block.call(x);
        return norm.call(x);
    }

    /// <summary>The position table for a <paramref name="rows"/> x <paramref name="columns"/> grid: the stored one, or its grid part resampled bicubically.</summary>
    Tensor PositionEmbedding(long rows, long columns)
    {
        if (rows == _referenceGrid && columns == _referenceGrid) return pos_embed;
        var grid = pos_embed[.., 1..].reshape(1, _referenceGrid, _referenceGrid, FeatureDim).permute(0, 3, 1, 2);
        var resampled = functional.interpolate(grid, size: [rows, columns], mode: InterpolationMode.Bicubic, align_corners: false);
        return cat([pos_embed[.., ..1], resampled.permute(0, 2, 3, 1).reshape(1, rows * columns, FeatureDim)], 1);
    }

    /// <summary>Tokens of an image of <paramref name="height"/> x <paramref name="width"/>, the class token included.</summary>
    long TokenCount(long height, long width) => 1 + (height / _patch) * (width / _patch);

    /// <summary>The patch embedding, then per block the qkv, attention and projection products and the MLP's two layers.</summary>
    public override long MultiplyAddsPerImage(long height, long width)
    {
        long tokens = TokenCount(height, width), dim = FeatureDim;
        long embedding = (tokens - 1) * dim * Options.InputChannels * _patch * _patch;
        long block = tokens * dim * dim * (3 + 1 + 8) + 2 * tokens * tokens * dim;
        return embedding + blocks.Count * block;
    }

    /// <summary>Per block: the normed inputs, q, k, v, attention output and MLP hidden layer (about 12 D per token) and each head's attention matrix twice.</summary>
    public override long TrainingBytesPerImage(long height, long width)
    {
        long tokens = TokenCount(height, width);
        return blocks.Count * (tokens * FeatureDim * 12 + 2L * _heads * tokens * tokens) * sizeof(float);
    }
}

/// <summary>timm's PatchEmbed: a convolution with the patch's size and stride (proj).</summary>
sealed class PatchEmbedding : Module<Tensor, Tensor>
{
    readonly Conv2d proj;

    public PatchEmbedding(int channels, int dim, int patch) : base(nameof(PatchEmbedding))
    {
        proj = Conv2d(channels, dim, patch, stride: patch);
        RegisterComponents();
    }

    public override Tensor forward(Tensor input) => proj.call(input);

    internal Conv2d Projection => proj;
}

/// <summary>A pre-norm transformer block: x + attn(norm1(x)), then x + mlp(norm2(x)).</summary>
sealed class TransformerBlock : Module<Tensor, Tensor>
{
    internal (LayerNorm Norm1, Linear Qkv, Linear Projection, LayerNorm Norm2, Linear Fc1, Linear Fc2) Parts =>
        (norm1, attn.Qkv, attn.Projection, norm2, mlp.Fc1, mlp.Fc2);

    readonly LayerNorm norm1, norm2;
    readonly SelfAttention attn;
    readonly FeedForward mlp;

    public TransformerBlock(int dim, int heads) : base(nameof(TransformerBlock))
    {
        norm1 = LayerNorm(dim, eps: VisionTransformer.NormEpsilon);
        attn = new SelfAttention(dim, heads);
        norm2 = LayerNorm(dim, eps: VisionTransformer.NormEpsilon);
        mlp = new FeedForward(dim, 4 * dim);
        RegisterComponents();
    }

    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        var x = input.add(attn.call(norm1.call(input)), Kept(1));
        return x.add(mlp.call(norm2.call(x)), Kept(1)).MoveToOuterDisposeScope();
    }
}

/// <summary>Multi-head self-attention with one qkv projection (timm's Attention).</summary>
sealed class SelfAttention : Module<Tensor, Tensor>
{
    readonly Linear qkv, proj;
    readonly int _heads;

    public SelfAttention(int dim, int heads) : base(nameof(SelfAttention))
    {
        _heads = heads;
        qkv = Linear(dim, 3 * dim);
        proj = Linear(dim, dim);
        RegisterComponents();
    }

    internal Linear Qkv => qkv;
    internal Linear Projection => proj;

    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        long batch = input.shape[0], tokens = input.shape[1], dim = input.shape[2], headDim = dim / _heads;
        var parts = qkv.call(input).reshape(batch, tokens, 3, _heads, headDim).permute(2, 0, 3, 1, 4);
        var (q, k, v) = (parts[0], parts[1], parts[2]);
        var weights = functional.softmax(q.matmul(k.transpose(-2, -1)).mul(Kept(1 / Math.Sqrt(headDim))), -1);
        var mixed = weights.matmul(v).transpose(1, 2).reshape(batch, tokens, dim);
        return proj.call(mixed).MoveToOuterDisposeScope();
    }
}

/// <summary>timm's Mlp: fc1, GELU, fc2.</summary>
sealed class FeedForward : Module<Tensor, Tensor>
{
    readonly Linear fc1, fc2;

    public FeedForward(int dim, int hidden) : base(nameof(FeedForward))
    {
        fc1 = Linear(dim, hidden);
        fc2 = Linear(hidden, dim);
        RegisterComponents();
    }

    public override Tensor forward(Tensor input) => fc2.call(functional.gelu(fc1.call(input)));

    internal Linear Fc1 => fc1;
    internal Linear Fc2 => fc2;
}
