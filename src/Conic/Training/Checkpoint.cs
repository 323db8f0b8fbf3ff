using System.Text;
using System.Text.Json;
using static TorchSharp.torch;

namespace Conic.Training;

/// <summary>
/// The header of a checkpoint: where training stands, the options that built the run, and what is needed to
/// rebuild the model without the dataset (instance count, input normalisation, the training images' size; 0 in
/// checkpoints written before the size was recorded).
/// </summary>
public sealed record CheckpointHeader(int CompletedEpochs, long Step, int InstanceCount, float[] ChannelMean, float[] ChannelStd,
                                      PretrainOptions Options, int ImageHeight = 0, int ImageWidth = 0);

/// <summary>
/// One file holding a header and named float32/int64 tensors (model state and optimiser buffers). Written to a
/// temporary file, flushed to disk, then renamed over the old one, so a run killed at any moment leaves either the
/// previous or the new checkpoint, never a torn one.
/// </summary>
public static class Checkpoint
{
    const string Magic = "CONIC-CHECKPOINT";
    const int FormatVersion = 1;

    public static void Save(string path, CheckpointHeader header, IEnumerable<(string Name, Tensor Value)> tensors)
    {
        Runtime.AtomicFile.Write(path, stream =>
        {
            using var writer = new BinaryWriter(stream, Encoding.UTF8, leaveOpen: true);
            writer.Write(Magic);
            writer.Write(FormatVersion);
            writer.Write(JsonSerializer.Serialize(header, RunJson.Options));
            var list = tensors.ToList();
            writer.Write(list.Count);
            foreach (var (name, value) in list) WriteTensor(writer, name, value);
        });
    }

    public static CheckpointHeader ReadHeader(string path)
    {
        using var reader = Open(path);
        return ReadHeader(reader, path);
    }

    /// <summary>
    /// Reads the header and copies every stored tensor into the target of the same name (shapes must match).
    /// Stored tensors for which <paramref name="skip"/> is true are read past (e.g. optimiser state when only evaluating).
    /// </summary>
    public static CheckpointHeader Load(string path, IReadOnlyDictionary<string, Tensor> targets, Func<string, bool>? skip = null)
    {
        using var reader = Open(path);
        var header = ReadHeader(reader, path);
        int count = reader.ReadInt32();
        var seen = new HashSet<string>();
        using var noGrad = no_grad();
        for (int i = 0; i < count; i++)
        {
            string name = reader.ReadString();
            using var value = ReadTensor(reader, path, name);
            if (skip?.Invoke(name) == true) continue;
            if (!targets.TryGetValue(name, out var target))
                throw new ConicException($"{path}: tensor '{name}' does not belong to this model");
            if (!target.shape.SequenceEqual(value.shape))
                throw new ConicException($"{path}: tensor '{name}' has shape [{string.Join(", ", value.shape)}], the model expects [{string.Join(", ", target.shape)}]");
            target.copy_(value);
            seen.Add(name);
        }
        var missing = targets.Keys.Where(k => !seen.Contains(k)).ToList();
        if (missing.Count > 0) throw new ConicException($"{path}: checkpoint lacks '{missing[0]}' ({missing.Count} tensors missing)");
        return header;
    }

    static BinaryReader Open(string path)
    {
        if (!File.Exists(path)) throw new ConicException($"{path}: no checkpoint here");
        var reader = new BinaryReader(File.OpenRead(path), Encoding.UTF8);
        try
        {
            if (reader.ReadString() != Magic) throw new ConicException($"{path}: not a Conic checkpoint");
            int version = reader.ReadInt32();
            if (version != FormatVersion) throw new ConicException($"{path}: checkpoint format {version}, this Conic reads {FormatVersion}");
            return reader;
        }
        catch (EndOfStreamException)
        {
            reader.Dispose();
            throw new ConicException($"{path}: truncated checkpoint");
        }
        catch (Exception)
        {
            reader.Dispose();
            throw;
        }
    }

    static CheckpointHeader ReadHeader(BinaryReader reader, string path)
    {
        try
        {
            return JsonSerializer.Deserialize<CheckpointHeader>(reader.ReadString(), RunJson.Options)
                   ?? throw new ConicException($"{path}: empty checkpoint header");
        }
        catch (Exception e) when (e is JsonException or EndOfStreamException)
        {
            throw new ConicException($"{path}: unreadable checkpoint header ({e.Message.Split('\n')[0]})");
        }
    }

    static void WriteTensor(BinaryWriter writer, string name, Tensor value)
    {
        using var cpuValue = value.detach().cpu().contiguous();
        writer.Write(name);
        writer.Write((int)cpuValue.dtype);
        writer.Write(cpuValue.shape.Length);
        foreach (long d in cpuValue.shape) writer.Write(d);
        switch (cpuValue.dtype)
        {
            case ScalarType.Float32:
                writer.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(cpuValue.data<float>().ToArray().AsSpan()));
                break;
            case ScalarType.Int64:
                writer.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(cpuValue.data<long>().ToArray().AsSpan()));
                break;
            default:
                throw new NotSupportedException($"checkpoint tensor '{name}' has dtype {cpuValue.dtype}");
        }
    }

    static Tensor ReadTensor(BinaryReader reader, string path, string name)
    {
        try
        {
            var dtype = (ScalarType)reader.ReadInt32();
            int rank = reader.ReadInt32();
            var shape = new long[rank];
            for (int d = 0; d < rank; d++) shape[d] = reader.ReadInt64();
            long elements = shape.Aggregate(1L, (a, b) => a * b);
            switch (dtype)
            {
                case ScalarType.Float32:
                {
                    var data = new float[elements];
                    reader.BaseStream.ReadExactly(System.Runtime.InteropServices.MemoryMarshal.AsBytes(data.AsSpan()));
                    return tensor(data, shape);
                }
                case ScalarType.Int64:
                {
                    var data = new long[elements];
                    reader.BaseStream.ReadExactly(System.Runtime.InteropServices.MemoryMarshal.AsBytes(data.AsSpan()));
                    return tensor(data, shape);
                }
                default:
                    throw new ConicException($"{path}: tensor '{name}' has unsupported dtype {dtype}");
            }
        }
        catch (EndOfStreamException)
        {
            throw new ConicException($"{path}: truncated checkpoint (in tensor '{name}')");
        }
    }
}
