using System.Text;
using System.Text.Json;
using Conic.Runtime;
using static TorchSharp.torch;

namespace Conic.Export;

/// <summary>
/// The safetensors format (Hugging Face): an 8-byte little-endian header length, a JSON header naming each tensor's
/// dtype, shape and byte range, then the raw little-endian data. Read by safetensors.torch.load_file and others.
/// Kept rather than TorchSharp.PyBridge's save_safetensors, which writes no <c>__metadata__</c> (where the
/// normalisation and architecture go) and sizes the header in characters, not UTF-8 bytes.
/// </summary>
public static class SafetensorsWriter
{
    /// <summary>Writes <paramref name="tensors"/> (float32 or int64) and string metadata as a safetensors file, atomically.</summary>
    public static void Write(string path, IEnumerable<(string Name, Tensor Tensor)> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var blobs = new List<(string Name, string Dtype, long[] Shape, byte[] Bytes)>();
        foreach (var (name, tensor) in tensors)
        {
            var cpu = tensor.detach().cpu().contiguous();
            var (dtype, bytes) = cpu.dtype switch
            {
                ScalarType.Float32 => ("F32", Bytes(cpu.data<float>().ToArray())),
                ScalarType.Int64 => ("I64", Bytes(cpu.data<long>().ToArray())),
                _ => throw new ArgumentException($"{name}: dtype {cpu.dtype} is not exported"),
            };
            blobs.Add((name, dtype, cpu.shape, bytes));
        }
        var header = new Dictionary<string, object>();
        if (metadata != null) header["__metadata__"] = metadata;
        long offset = 0;
        foreach (var (name, dtype, shape, bytes) in blobs)
        {
            header[name] = new Dictionary<string, object> { ["dtype"] = dtype, ["shape"] = shape, ["data_offsets"] = new[] { offset, offset + bytes.Length } };
            offset += bytes.Length;
        }
        var json = Encoding.UTF8.GetBytes(JsonSerializer.Serialize(header));
        // Pad the header with spaces so the data starts 8-byte aligned.
        int padding = (8 - json.Length % 8) % 8;
        AtomicFile.Write(path, stream =>
        {
            using var writer = new BinaryWriter(stream, Encoding.UTF8, leaveOpen: true);
            writer.Write((ulong)(json.Length + padding));
            writer.Write(json);
            writer.Write(Enumerable.Repeat((byte)' ', padding).ToArray());
            foreach (var blob in blobs) writer.Write(blob.Bytes);
        });
    }

    static byte[] Bytes<T>(T[] values) where T : unmanaged
    {
        var bytes = new byte[values.Length * System.Runtime.InteropServices.Marshal.SizeOf<T>()];
        Buffer.BlockCopy(values, 0, bytes, 0, bytes.Length);
        return bytes;
    }
}
