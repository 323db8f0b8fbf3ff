using System.Runtime.InteropServices;
using Conic.Models;
using Conic.Runtime;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static Conic.Runtime.KeptScalars;

namespace Conic.Export;

/// <summary>
/// Writes a ResNet backbone (ViTs not yet), or a fine-tuned segmenter or detector built on one, as an ONNX model (opset 17): pixels
/// in [0, 1] as [batch, C, height, width] float32 in, batch and image size dynamic. Written directly as protocol
/// buffers (no ONNX exporter exists for TorchSharp). The input normalisation is part of the graph; every BatchNorm is
/// folded into the convolution before it (inference statistics).
/// </summary>
public static class OnnxWriter
{
    const int IrVersion = 8, Opset = 17, FloatType = 1, Int64Type = 7;
    /// <summary>The names of the encoder's input (pixels in [0, 1]) and output (pooled features).</summary>
    public const string InputName = "image", OutputName = "features";

    /// <summary>Writes the encoder as ONNX: pixels in [0, 1] [batch, C, H, W], normalised inside the graph, pooled features [batch, D] out.</summary>
    public static void Write(string path, Models.Backbone backbone, float[] channelMean, float[] channelStd, IReadOnlyDictionary<string, string> metadata)
    {
        var graph = new GraphBuilder();
        string x = Stages(graph, backbone, Normalized(graph, backbone, channelMean, channelStd)).Last();
        x = graph.Node("GlobalAveragePool", new[] { x });
        graph.Node("Flatten", new[] { x }, new[] { Int("axis", 1) }, output: OutputName);
        Save(path, graph.Build("conic_encoder", [Value(InputName, ["batch", (long)backbone.Options.InputChannels, "height", "width"])],
                               [Value(OutputName, ["batch", (long)backbone.FeatureDim])]), metadata);
    }

    /// <summary>The names of a fine-tuned network's outputs: class logits and the predicted class.</summary>
    public const string LogitsName = "logits", ClassMapName = "classes";

    /// <summary>A fine-tuned classifier: pixels in [0, 1] in; class logits [batch, K] and the predicted class (int64) [batch] out.</summary>
    public static void WriteClassifier(string path, ClassificationNetwork network, float[] channelMean, float[] channelStd, IReadOnlyDictionary<string, string> metadata)
    {
        var graph = new GraphBuilder();
        string x = Stages(graph, network.Backbone, Normalized(graph, network.Backbone, channelMean, channelStd)).Last();
        x = graph.Node("Flatten", [graph.Node("GlobalAveragePool", [x])], [Int("axis", 1)]);
        var fc = network.Classifier;
        string weight = graph.Constant("fc.weight", fc.weight!.detach().cpu().data<float>().ToArray(), fc.weight.shape);
        string bias = graph.Constant("fc.bias", fc.bias!.detach().cpu().data<float>().ToArray(), fc.bias.shape);
        string logits = graph.Node("Gemm", [x, weight, bias], [Int("transB", 1)], output: LogitsName);
        graph.Node("ArgMax", [logits], [Int("axis", 1), Int("keepdims", 0)], output: ClassesName);
        Save(path, graph.Build("conic_classifier", [Value(InputName, ["batch", (long)network.Backbone.Options.InputChannels, "height", "width"])],
                               [Value(LogitsName, ["batch", fc.weight.shape[0]]), Value(ClassesName, ["batch"], Int64Type)]), metadata);
    }

    /// <summary>
    /// A fine-tuned segmenter (backbone + FPN decoder): pixels in [0, 1] [batch, C, height, width] in; class logits
    /// [batch, K, height, width] and the class map (argmax, int64) [batch, height, width] out.
    /// </summary>
    public static void WriteSegmenter(string path, DenseNetwork network, float[] channelMean, float[] channelStd, IReadOnlyDictionary<string, string> metadata)
    {
        var graph = new GraphBuilder();
        string input = Normalized(graph, network.Backbone, channelMean, channelStd);
        string maps = Decoder(graph, network, Stages(graph, network.Backbone, input));
        if (!network.UpsamplesToInput) throw new ArgumentException("a segmenter's maps are upsampled to the input", nameof(network));
        if (!network.Backbone.Options.SmallImageStem) maps = graph.Resize(maps, graph.SpatialSize(InputName), "linear");
        graph.Node("Identity", [maps], output: LogitsName);
        graph.Node("ArgMax", [maps], [Int("axis", 1), Int("keepdims", 0)], output: ClassMapName);
        Save(path, graph.Build("conic_segmenter", [Value(InputName, ["batch", (long)network.Backbone.Options.InputChannels, "height", "width"])],
                               [Value(LogitsName, ["batch", (long)network.Outputs, "height", "width"]),
                                Value(ClassMapName, ["batch", "height", "width"], Int64Type)]), metadata);
    }

    /// <summary>The names of a detector's outputs: boxes, their scores and class labels.</summary>
    public const string BoxesName = "boxes", ScoresName = "scores", ClassesName = "labels";

    /// <summary>
    /// A fine-tuned CenterNet detector: pixels in [0, 1] in; the best <paramref name="keep"/> peaks of the class heat
    /// maps out: boxes [batch, keep, 4] as [x, y, width, height] in input pixels, scores [batch, keep] and class indices
    /// (int64, 0-based in category order) [batch, keep]. Decoding is in the graph: sigmoid, 3×3 max-pool peaks, TopK.
    /// </summary>
    public static void WriteDetector(string path, DenseNetwork network, int classes, int keep, float[] channelMean, float[] channelStd,
                                     IReadOnlyDictionary<string, string> metadata)
    {
        var graph = new GraphBuilder();
        string maps = Decoder(graph, network, Stages(graph, network.Backbone, Normalized(graph, network.Backbone, channelMean, channelStd)));
        string Channels(int from, int to) => graph.Node("Slice", [maps, graph.Int64s([from]), graph.Int64s([to]), graph.Int64s([1])]);
        string heat = graph.Node("Sigmoid", [Channels(0, classes)]);
        string pooled = graph.Node("MaxPool", [heat], [Ints("kernel_shape", 3, 3), Ints("strides", 1, 1), Ints("pads", 1, 1, 1, 1)]);
        string peaks = graph.Node("Mul", [heat, graph.Node("Cast", [graph.Node("Equal", [pooled, heat])], [Int("to", FloatType)])]);
        string flat = graph.Node("Flatten", [peaks], [Int("axis", 1)]);
        string cells = graph.Node("Mul", [graph.Slice(graph.Node("Shape", [maps]), 2, 3), graph.Slice(graph.Node("Shape", [maps]), 3, 4)]);
        string width = graph.Slice(graph.Node("Shape", [maps]), 3, 4);
        string count = graph.Node("Min", [graph.Int64s([keep]), graph.Node("Mul", [cells, graph.Int64s([classes])])]);
        string scores = graph.Node("TopK", [flat, count], [Int("axis", 1)], output: ScoresName, extraOutputs: 1);
        string index = scores + ":1";
        string cell = graph.Node("Mod", [index, cells]);
        graph.Node("Div", [index, cells], output: ClassesName);
        string stride = graph.Constant("output_stride", [network.OutputStride], [1]);
        string Float(string value) => graph.Node("Cast", [value], [Int("to", FloatType)]);
        string ys = Float(graph.Node("Div", [cell, width])), xs = Float(graph.Node("Mod", [cell, width]));
        // One map of the box channels gathered at the peaks' cells: [batch, keep].
        string At(int channel) => graph.Node("GatherElements", [graph.Node("Flatten", [Channels(channel, channel + 1)], [Int("axis", 1)]), cell], [Int("axis", 1)]);
        string boxWidth = graph.Node("Mul", [graph.Node("Exp", [At(classes)]), stride]);
        string boxHeight = graph.Node("Mul", [graph.Node("Exp", [At(classes + 1)]), stride]);
        string half = graph.Constant("half", [0.5f], [1]);
        string left = graph.Node("Sub", [graph.Node("Mul", [graph.Node("Add", [xs, At(classes + 2)]), stride]), graph.Node("Mul", [boxWidth, half])]);
        string top = graph.Node("Sub", [graph.Node("Mul", [graph.Node("Add", [ys, At(classes + 3)]), stride]), graph.Node("Mul", [boxHeight, half])]);
        var corners = new[] { left, top, boxWidth, boxHeight }.Select(v => graph.Node("Unsqueeze", [v, graph.Int64s([2])])).ToArray();
        graph.Node("Concat", corners, [Int("axis", 2)], output: BoxesName);
        Save(path, graph.Build("conic_detector", [Value(InputName, ["batch", (long)network.Backbone.Options.InputChannels, "height", "width"])],
                               [Value(BoxesName, ["batch", "detections", 4L]), Value(ScoresName, ["batch", "detections"]),
                                Value(ClassesName, ["batch", "detections"], Int64Type)]), metadata);
    }

    /// <summary>The input, normalised with the training statistics.</summary>
    static string Normalized(GraphBuilder graph, Models.Backbone backbone, float[] channelMean, float[] channelStd)
    {
        long[] perChannel = [1, backbone.Options.InputChannels, 1, 1];
        string x = graph.Node("Sub", [InputName, graph.Constant("channel_mean", channelMean, perChannel)]);
        return graph.Node("Div", [x, graph.Constant("channel_std", channelStd, perChannel)]);
    }

    /// <summary>The backbone's convolutions on <paramref name="x"/>; returns each stage's output, finest first.</summary>
    static List<string> Stages(GraphBuilder graph, Models.Backbone network, string x)
    {
        var backbone = network as ResNet ?? throw new ConicException(
            $"ONNX export of {network.Options.ArchitectureName} backbones is not built yet: export --format safetensors or pytorch");
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

    /// <summary>The FPN decoder of <see cref="DenseNetwork"/> on the stage outputs: its maps at the first stage's resolution.</summary>
    static string Decoder(GraphBuilder graph, DenseNetwork network, List<string> stages)
    {
        string? merged = null;
        for (int i = stages.Count - 1; i >= 0; i--)
        {
            string projected = graph.Conv($"decoder.lateral{i}", network.Lateral[i], stages[i]);
            merged = merged is null ? projected : graph.Node("Add", [projected, graph.Resize(merged, graph.SpatialSize(projected), "nearest")]);
        }
        string smoothed = graph.Node("Relu", [graph.FoldedConv("decoder.smooth", (network.Smooth, network.SmoothNorm), merged!)]);
        return graph.Conv("decoder.output", network.OutputLayer, smoothed);
    }

    static void Save(string path, ProtobufWriter graphProto, IReadOnlyDictionary<string, string> metadata)
    {
        var model = new ProtobufWriter()
            .Int(1, IrVersion)
            .String(2, "Conic")
            .Message(7, graphProto)
            .Message(8, new ProtobufWriter().String(1, "").Int(2, Opset));
        foreach (var (key, value) in metadata) model.Message(14, new ProtobufWriter().String(1, key).String(2, value));
        AtomicFile.Write(path, stream => stream.Write(model.ToArray()));
    }

    /// <summary>A graph input or output: a float32 (or <paramref name="type"/>) tensor whose dimensions are fixed (long) or named (string, dynamic).</summary>
    static ProtobufWriter Value(string name, object[] dimensions, int type = FloatType)
    {
        var shape = new ProtobufWriter();
        foreach (var dimension in dimensions)
        {
            var dim = new ProtobufWriter();
            if (dimension is long size) dim.Int(1, size);
            else dim.String(2, (string)dimension);
            shape.Message(1, dim);
        }
        var tensorType = new ProtobufWriter().Int(1, type).Message(2, shape);
        return new ProtobufWriter().String(1, name).Message(2, new ProtobufWriter().Message(1, tensorType));
    }

    static ProtobufWriter Int(string name, long value) => new ProtobufWriter().String(1, name).Int(3, value).Int(20, 2);

    static ProtobufWriter Ints(string name, params long[] values) => new ProtobufWriter().String(1, name).PackedInts(8, values).Int(20, 7);

    static ProtobufWriter Text(string name, string value) => new ProtobufWriter().String(1, name).Bytes(4, System.Text.Encoding.UTF8.GetBytes(value)).Int(20, 3);

    sealed class GraphBuilder
    {
        readonly List<ProtobufWriter> _nodes = new(), _initializers = new();
        int _values;

        /// <param name="extraOutputs">Further outputs, named OUTPUT:1, OUTPUT:2, ... (e.g. TopK's indices).</param>
        public string Node(string op, string[] inputs, IEnumerable<ProtobufWriter>? attributes = null, string? output = null, int extraOutputs = 0)
        {
            output ??= $"{op.ToLowerInvariant()}_{_values++}";
            var node = new ProtobufWriter();
            foreach (var input in inputs) node.String(1, input);
            node.String(2, output);
            for (int i = 1; i <= extraOutputs; i++) node.String(2, $"{output}:{i}");
            node.String(3, output).String(4, op);
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

        /// <summary>A 1-D int64 constant (shapes, axes, slice bounds).</summary>
        public string Int64s(long[] values)
        {
            string name = $"int64s_{_values++}";
            _initializers.Add(new ProtobufWriter().PackedInts(1, [values.Length]).Int(2, Int64Type).String(8, name)
                                                  .Bytes(9, MemoryMarshal.AsBytes(values.AsSpan())));
            return name;
        }

        /// <summary>Elements [from, to) of a 1-D tensor.</summary>
        public string Slice(string x, long from, long to) => Node("Slice", [x, Int64s([from]), Int64s([to])]);

        /// <summary>The height and width of a [batch, C, H, W] value, as int64 [2].</summary>
        public string SpatialSize(string x) => Slice(Node("Shape", [x]), 2, 4);

        /// <summary>
        /// <paramref name="x"/> resized to <paramref name="size"/> (height, width) as TorchSharp's interpolate does: nearest
        /// (index = floor(output index · scale)) or bilinear without corner alignment (half-pixel centres).
        /// </summary>
        public string Resize(string x, string size, string mode)
        {
            string sizes = Node("Concat", [Slice(Node("Shape", [x]), 0, 2), size], [Int("axis", 0)]);
            var attributes = mode == "nearest"
                ? new[] { Text("mode", "nearest"), Text("coordinate_transformation_mode", "asymmetric"), Text("nearest_mode", "floor") }
                : new[] { Text("mode", "linear"), Text("coordinate_transformation_mode", "pytorch_half_pixel") };
            return Node("Resize", [x, "", "", sizes], attributes);
        }

        /// <summary>A Conv node with the convolution's own weights and bias (no BatchNorm after it).</summary>
        public string Conv(string name, Conv2d conv, string input)
        {
            using var scope = NewDisposeScope();
            var weight = conv.weight!.detach().cpu().contiguous();
            string w = Constant(name + ".weight", weight.data<float>().ToArray(), weight.shape);
            var inputs = conv.bias is { } bias ? new[] { input, w, Constant(name + ".bias", bias.detach().cpu().data<float>().ToArray(), bias.shape) } : new[] { input, w };
            return Node("Conv", inputs, ConvAttributes(conv, weight.shape[2..]));
        }

        static ProtobufWriter[] ConvAttributes(Conv2d conv, long[] kernel)
        {
            long[] padding = conv.padding!.Length == 1 ? [conv.padding[0], conv.padding[0]] : conv.padding;
            long[] stride = conv.stride.Length == 1 ? [conv.stride[0], conv.stride[0]] : conv.stride;
            return [Ints("kernel_shape", kernel), Ints("strides", stride), Ints("pads", padding[0], padding[1], padding[0], padding[1])];
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
            var scale = norm.weight!.to(ScalarType.Float64).div(norm.running_var!.to(ScalarType.Float64).add(Kept(norm.eps), Kept(1)).sqrt());
            var weight = conv.weight!.to(ScalarType.Float64).mul(scale.view(-1, 1, 1, 1)).to(ScalarType.Float32).cpu().contiguous();
            var bias = norm.bias!.to(ScalarType.Float64).sub(norm.running_mean!.to(ScalarType.Float64).mul(scale)).to(ScalarType.Float32).cpu();
            string w = Constant(name + ".weight", weight.data<float>().ToArray(), weight.shape);
            string b = Constant(name + ".bias", bias.data<float>().ToArray(), bias.shape);
            return Node("Conv", [input, w, b], ConvAttributes(conv, weight.shape[2..]));
        }

        public ProtobufWriter Build(string name, ProtobufWriter[] inputs, ProtobufWriter[] outputs)
        {
            var graph = new ProtobufWriter();
            foreach (var node in _nodes) graph.Message(1, node);
            graph.String(2, name);
            foreach (var initializer in _initializers) graph.Message(5, initializer);
            foreach (var input in inputs) graph.Message(11, input);
            foreach (var output in outputs) graph.Message(12, output);
            return graph;
        }
    }
}
