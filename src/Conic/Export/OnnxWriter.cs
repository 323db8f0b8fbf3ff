using System.Runtime.InteropServices;
using Conic.Models;
using Conic.Runtime;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Conic.Export;

/// <summary>
/// Writes a ResNet backbone as an ONNX model (opset 17): pixels in [0, 1] as [batch, C, height, width] float32 in,
/// features [batch, FeatureDim] out, batch and image size dynamic. Written directly as protocol buffers (no ONNX
/// exporter exists for TorchSharp). The input normalisation is part of the graph; every BatchNorm is folded into
/// the convolution before it (inference statistics), so the graph holds only Sub, Div, Conv, Relu, MaxPool, Add,
/// GlobalAveragePool and Flatten.
/// </summary>
public static class OnnxWriter
{
    const int IrVersion = 8, Opset = 17, FloatType = 1;
    public const string InputName = "image", OutputName = "features";

    public static void Write(string path, ResNet backbone, float[] channelMean, float[] channelStd, IReadOnlyDictionary<string, string> metadata)
    {
        var graph = new GraphBuilder();
        int channels = backbone.Options.InputChannels;
        long[] perChannel = { 1, channels, 1, 1 };
        string x = graph.Node("Sub", new[] { InputName, graph.Constant("channel_mean", channelMean, perChannel) });
        x = graph.Node("Div", new[] { x, graph.Constant("channel_std", channelStd, perChannel) });

        x = graph.Node("Relu", new[] { graph.FoldedConv("conv1", backbone.Stem, x) });
        if (backbone.HasMaxPool)
            x = graph.Node("MaxPool", new[] { x }, new ProtobufWriter[] { Ints("kernel_shape", 3, 3), Ints("strides", 2, 2), Ints("pads", 1, 1, 1, 1) });

        int blockNumber = 0;
        foreach (var block in backbone.Blocks)
        {
            string name = $"block{blockNumber++}", input = x;
            var branch = block.Branch;
            for (int i = 0; i < branch.Count; i++)
            {
                x = graph.FoldedConv($"{name}.conv{i + 1}", branch[i], x);
                if (i < branch.Count - 1) x = graph.Node("Relu", new[] { x });
            }
            string shortcut = block.Shortcut is { } pair ? graph.FoldedConv($"{name}.downsample", pair, input) : input;
            x = graph.Node("Relu", new[] { graph.Node("Add", new[] { x, shortcut }) });
        }
        x = graph.Node("GlobalAveragePool", new[] { x });
        graph.Node("Flatten", new[] { x }, new[] { Int("axis", 1) }, output: OutputName);

        var graphProto = graph.Build("conic_encoder",
            Value(InputName, new object[] { "batch", (long)channels, "height", "width" }),
            Value(OutputName, new object[] { "batch", (long)backbone.FeatureDim }));
        var model = new ProtobufWriter()
            .Int(1, IrVersion)
            .String(2, "Conic")
            .Message(7, graphProto)
            .Message(8, new ProtobufWriter().String(1, "").Int(2, Opset));
        foreach (var (key, value) in metadata) model.Message(14, new ProtobufWriter().String(1, key).String(2, value));

        AtomicFile.Write(path, stream => stream.Write(model.ToArray()));
    }

    /// <summary>A graph input or output: float32 tensor whose dimensions are fixed (long) or named (string, dynamic).</summary>
    static ProtobufWriter Value(string name, object[] dimensions)
    {
        var shape = new ProtobufWriter();
        foreach (var dimension in dimensions)
        {
            var dim = new ProtobufWriter();
            if (dimension is long size) dim.Int(1, size);
            else dim.String(2, (string)dimension);
            shape.Message(1, dim);
        }
        var tensorType = new ProtobufWriter().Int(1, FloatType).Message(2, shape);
        return new ProtobufWriter().String(1, name).Message(2, new ProtobufWriter().Message(1, tensorType));
    }

    static ProtobufWriter Int(string name, long value) => new ProtobufWriter().String(1, name).Int(3, value).Int(20, 2);

    static ProtobufWriter Ints(string name, params long[] values) => new ProtobufWriter().String(1, name).PackedInts(8, values).Int(20, 7);

    sealed class GraphBuilder
    {
        readonly List<ProtobufWriter> _nodes = new(), _initializers = new();
        int _values;

        public string Node(string op, string[] inputs, IEnumerable<ProtobufWriter>? attributes = null, string? output = null)
        {
            output ??= $"{op.ToLowerInvariant()}_{_values++}";
            var node = new ProtobufWriter();
            foreach (var input in inputs) node.String(1, input);
            node.String(2, output).String(3, output).String(4, op);
            foreach (var attribute in attributes ?? Array.Empty<ProtobufWriter>()) node.Message(5, attribute);
            _nodes.Add(node);
            return output;
        }

        public string Constant(string name, float[] values, long[] shape)
        {
            var tensor = new ProtobufWriter().PackedInts(1, shape).Int(2, FloatType).String(8, name)
                                             .Bytes(9, MemoryMarshal.AsBytes(values.AsSpan()));
            _initializers.Add(tensor);
            return name;
        }

        /// <summary>
        /// A Conv node whose weights and bias absorb the BatchNorm after it:
        /// W' = W·γ/√(σ²+ε) per output channel, b' = β − μ·γ/√(σ²+ε), computed in float64.
        /// </summary>
        public string FoldedConv(string name, (Conv2d Conv, BatchNorm2d Norm) pair, string input)
        {
            var (conv, norm) = pair;
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            var scale = norm.weight!.to(ScalarType.Float64).div(norm.running_var!.to(ScalarType.Float64).add(norm.eps).sqrt());
            var weight = conv.weight!.to(ScalarType.Float64).mul(scale.view(-1, 1, 1, 1)).to(ScalarType.Float32).cpu().contiguous();
            var bias = norm.bias!.to(ScalarType.Float64).sub(norm.running_mean!.to(ScalarType.Float64).mul(scale)).to(ScalarType.Float32).cpu();
            long[] kernel = weight.shape[2..];
            long[] padding = conv.padding!.Length == 1 ? new[] { conv.padding[0], conv.padding[0] } : conv.padding;
            long[] stride = conv.stride.Length == 1 ? new[] { conv.stride[0], conv.stride[0] } : conv.stride;
            string w = Constant(name + ".weight", weight.data<float>().ToArray(), weight.shape);
            string b = Constant(name + ".bias", bias.data<float>().ToArray(), bias.shape);
            return Node("Conv", new[] { input, w, b }, new[]
            {
                Ints("kernel_shape", kernel),
                Ints("strides", stride),
                Ints("pads", padding[0], padding[1], padding[0], padding[1]),
            });
        }

        public ProtobufWriter Build(string name, ProtobufWriter input, ProtobufWriter output)
        {
            var graph = new ProtobufWriter();
            foreach (var node in _nodes) graph.Message(1, node);
            graph.String(2, name);
            foreach (var initializer in _initializers) graph.Message(5, initializer);
            return graph.Message(11, input).Message(12, output);
        }
    }
}
