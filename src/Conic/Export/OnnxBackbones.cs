using Conic.Models;
using static TorchSharp.torch;
using static Conic.Export.OnnxGraph;

namespace Conic.Export;

/// <summary>
/// The backbones as ONNX graphs (see <see cref="OnnxWriter"/>): a ResNet's convolutions with BatchNorm folded in, a
/// ConvNeXt's stages, a ViT's tokens with its position table resampled in the graph; the pooled features and the maps
/// dense heads use, named after the network's own parameters.
/// </summary>
static class OnnxBackbones
{
    /// <summary>The backbone's pooled features [batch, D] of the normalised input <paramref name="x"/>.</summary>
    public static string PooledFeatures(OnnxGraph graph, Models.Backbone backbone, string x)
    {
        if (backbone is VisionTransformer vit)
        {
            // The class token: tokens[:, 0].
            string first = graph.Node("Slice", [VitTokens(graph, vit, x, out _), graph.Int64s([0]), graph.Int64s([1]), graph.Int64s([1])]);
            return graph.Node("Flatten", [first], [Int("axis", 1)]);
        }
        string pooled = graph.Node("Flatten", [graph.Node("GlobalAveragePool", [Stages(graph, backbone, x).Last()])], [Int("axis", 1)]);
        return backbone is ConvNeXt convnext ? graph.LayerNorm("head.norm", convnext.Parts.HeadNorm.Affine, ChannelLayerNorm.Epsilon, pooled) : pooled;
    }

    /// <summary>The backbone's maps for dense heads on <paramref name="x"/>, finest first (as <see cref="Models.Backbone.forward_stages"/>).</summary>
    public static List<string> Stages(OnnxGraph graph, Models.Backbone backbone, string x) => backbone switch
    {
        ResNet resnet => ResNetStages(graph, resnet, x),
        ConvNeXt convnext => ConvNeXtStages(graph, convnext, x),
        VisionTransformer vit => VitPyramid(graph, vit, x),
        _ => throw new ConicException($"ONNX export of {backbone.Options.ArchitectureName} backbones is not built"),
    };

    static List<string> ResNetStages(OnnxGraph graph, ResNet backbone, string x)
    {
        x = graph.Node("Relu", [graph.FoldedConv("conv1", backbone.Stem, x)]);
        if (backbone.HasMaxPool)
            x = graph.Node("MaxPool", [x], [Ints("kernel_shape", 3, 3), Ints("strides", 2, 2), Ints("pads", 1, 1, 1, 1)]);
        var stages = new List<string>();
        int blockNumber = 0;
        foreach (var (block, lastOfStage) in backbone.BlocksWithStageEnds)
        {
            string name = $"block{blockNumber++}", input = x;
            var branch = block.Branch;
            for (int i = 0; i < branch.Count; i++)
            {
                x = graph.FoldedConv($"{name}.conv{i + 1}", branch[i], x);
                if (i < branch.Count - 1) x = graph.Node("Relu", [x]);
            }
            string shortcut = block.Shortcut is { } pair ? graph.FoldedConv($"{name}.downsample", pair, input) : input;
            x = graph.Node("Relu", [graph.Node("Add", [x, shortcut])]);
            if (lastOfStage) stages.Add(x);
        }
        return stages;
    }

    static List<string> ConvNeXtStages(OnnxGraph graph, ConvNeXt backbone, string x)
    {
        var (stemConvolution, stemNorm, convnextStages, _) = backbone.Parts;
        x = graph.ChannelLayerNorm("stem.1", stemNorm, graph.Conv("stem.0", stemConvolution, x));
        var outputs = new List<string>();
        for (int s = 0; s < convnextStages.Count; s++)
        {
            var stage = convnextStages[s];
            if (stage.Downsampling is { } downsampling)
            {
                x = graph.ChannelLayerNorm($"stages.{s}.downsample.0", downsampling.Norm, x);
                // As ConvNeXtStage: a map of odd size gets a zero row or column at the bottom or right.
                string pads = graph.Node("Concat", [graph.Int64s([0, 0, 0, 0, 0, 0]), graph.Node("Mod", [graph.SpatialSize(x), graph.Int64s([2, 2])])], [Int("axis", 0)]);
                x = graph.Conv($"stages.{s}.downsample.1", downsampling.Convolution, graph.Node("Pad", [x, pads]));
            }
            for (int b = 0; b < stage.Blocks.Count; b++)
            {
                string name = $"stages.{s}.blocks.{b}";
                var (depthwise, blockNorm, fc1, fc2, scale) = stage.Blocks[b].Parts;
                string y = graph.Node("Transpose", [graph.Conv($"{name}.conv_dw", depthwise, x)], [Ints("perm", 0, 2, 3, 1)]);
                y = graph.LayerNorm($"{name}.norm", (blockNorm.weight!, blockNorm.bias!), ChannelLayerNorm.Epsilon, y);
                y = graph.Linear($"{name}.mlp.fc2", fc2.weight!, fc2.bias!, graph.Gelu(graph.Linear($"{name}.mlp.fc1", fc1.weight!, fc1.bias!, y)));
                y = graph.Node("Mul", [y, graph.Constant($"{name}.gamma", scale)]);
                x = graph.Node("Add", [x, graph.Node("Transpose", [y], [Ints("perm", 0, 3, 1, 2)])]);
            }
            outputs.Add(x);
        }
        return outputs;
    }

    /// <summary>
    /// A ViT's tokens after the last norm [batch, 1 + h·w, D] (class token first); <paramref name="patches"/> is the
    /// patch map [batch, D, h, w] whose size the position table is resampled to.
    /// </summary>
    static string VitTokens(OnnxGraph graph, VisionTransformer vit, string x, out string patches)
    {
        var (projection, classToken, positionTable, blocks, norm) = vit.Parts;
        long dim = vit.FeatureDim;
        patches = graph.Conv("patch_embed.proj", projection, x);
        string batch = graph.Slice(graph.Node("Shape", [x]), 0, 1);
        string classTokens = graph.Node("Expand", [graph.Constant("cls_token", classToken), graph.Node("Concat", [batch, graph.Int64s([1, dim])], [Int("axis", 0)])]);
        string tokens = graph.Node("Concat", [classTokens, AsTokens(graph, patches, dim)], [Int("axis", 1)]);
        tokens = graph.Node("Add", [tokens, VitPositions(graph, positionTable, vit.ReferenceGrid, dim, patches)]);
        string scale = graph.Constant("attention_scale", [(float)(1 / Math.Sqrt(dim / vit.Heads))], [1]);
        for (int b = 0; b < blocks.Count; b++) tokens = VitBlock(graph, $"blocks.{b}", blocks[b], vit.Heads, dim, scale, tokens);
        return graph.LayerNorm("norm", (norm.weight!, norm.bias!), VisionTransformer.NormEpsilon, tokens);
    }

    /// <summary>A [batch, D, h, w] map as tokens [batch, h·w, D].</summary>
    static string AsTokens(OnnxGraph graph, string map, long dim) =>
        graph.Node("Transpose", [graph.Node("Reshape", [map, graph.Int64s([0, dim, -1])])], [Ints("perm", 0, 2, 1)]);

    /// <summary>
    /// The position table for the patch map's grid [1, 1 + h·w, D]: the class token's row, then the grid part as a map
    /// [1, D, grid, grid] resampled as <see cref="VisionTransformer"/> does (bicubic, A = -0.75, half-pixel centres;
    /// the stored table unchanged at its own size).
    /// </summary>
    static string VitPositions(OnnxGraph graph, Tensor positionTable, long grid, long dim, string patches)
    {
        using var scope = NewDisposeScope();
        var table = positionTable.detach();
        string gridMap = graph.Constant("pos_embed.grid", table[.., 1..].reshape(1, grid, grid, dim).permute(0, 3, 1, 2));
        string sizes = graph.Node("Concat", [graph.Int64s([1, dim]), graph.SpatialSize(patches)], [Int("axis", 0)]);
        string resampled = graph.Node("Resize", [gridMap, "", "", sizes],
            [Text("mode", "cubic"), Float("cubic_coeff_a", -0.75f), Text("coordinate_transformation_mode", "half_pixel")]);
        return graph.Node("Concat", [graph.Constant("pos_embed.class", table[.., ..1]), AsTokens(graph, resampled, dim)], [Int("axis", 1)]);
    }

    /// <summary>One pre-norm block: tokens + attention(norm1(tokens)), then + mlp(norm2(·)); q, k and v are the qkv layer's three row blocks.</summary>
    static string VitBlock(OnnxGraph graph, string name, TransformerBlock block, long heads, long dim, string scale, string tokens)
    {
        var (norm1, qkv, projection, norm2, fc1, fc2) = block.Parts;
        string h = graph.LayerNorm($"{name}.norm1", (norm1.weight!, norm1.bias!), VisionTransformer.NormEpsilon, tokens);
        // One of q, k, v split into heads: [batch, heads, tokens, head dim] in the order perm gives.
        string Part(int part, string label, long[] perm)
        {
            using var scope = NewDisposeScope();
            string projected = graph.Linear($"{name}.attn.{label}", qkv.weight!.narrow(0, part * dim, dim), qkv.bias!.narrow(0, part * dim, dim), h);
            return graph.Node("Transpose", [graph.Node("Reshape", [projected, graph.Int64s([0, 0, heads, dim / heads])])], [Ints("perm", perm)]);
        }
        string q = Part(0, "q", [0, 2, 1, 3]), keysTransposed = Part(1, "k", [0, 2, 3, 1]), v = Part(2, "v", [0, 2, 1, 3]);
        string weights = graph.Node("Softmax", [graph.Node("Mul", [graph.Node("MatMul", [q, keysTransposed]), scale])], [Int("axis", -1)]);
        string mixed = graph.Node("Reshape", [graph.Node("Transpose", [graph.Node("MatMul", [weights, v])], [Ints("perm", 0, 2, 1, 3)]), graph.Int64s([0, 0, dim])]);
        tokens = graph.Node("Add", [tokens, graph.Linear($"{name}.attn.proj", projection.weight!, projection.bias!, mixed)]);
        h = graph.LayerNorm($"{name}.norm2", (norm2.weight!, norm2.bias!), VisionTransformer.NormEpsilon, tokens);
        h = graph.Linear($"{name}.mlp.fc2", fc2.weight!, fc2.bias!, graph.Gelu(graph.Linear($"{name}.mlp.fc1", fc1.weight!, fc1.bias!, h)));
        return graph.Node("Add", [tokens, h]);
    }

    /// <summary>A ViT's simple pyramid (as <see cref="VisionTransformer.forward_stages"/>): the patch map upsampled 4× and 2× (nearest), itself, max-pooled 2×.</summary>
    static List<string> VitPyramid(OnnxGraph graph, VisionTransformer vit, string x)
    {
        string tokens = VitTokens(graph, vit, x, out string patches);
        string patchTokens = graph.Node("Slice", [tokens, graph.Int64s([1]), graph.Int64s([long.MaxValue]), graph.Int64s([1])]);
        string shape = graph.Node("Concat", [graph.Slice(graph.Node("Shape", [x]), 0, 1), graph.Int64s([vit.FeatureDim]), graph.SpatialSize(patches)], [Int("axis", 0)]);
        string map = graph.Node("Reshape", [graph.Node("Transpose", [patchTokens], [Ints("perm", 0, 2, 1)]), shape]);
        string Upsampled(long factor) => graph.Resize(map, graph.Node("Mul", [graph.SpatialSize(map), graph.Int64s([factor])]), "nearest");
        string pooled = graph.Node("MaxPool", [map], [Ints("kernel_shape", 2, 2), Ints("strides", 2, 2), Int("ceil_mode", 1)]);
        return [Upsampled(4), Upsampled(2), map, pooled];
    }
}
