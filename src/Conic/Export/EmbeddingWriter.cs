using System.Globalization;
using System.Text;
using Conic.Runtime;
using static TorchSharp.torch;

namespace Conic.Export;

/// <summary>Embeddings as CSV (an image's name or index, then its vector) and as NumPy .npy (float32 [n, d]).</summary>
public static class EmbeddingWriter
{
    /// <param name="embeddings">float32 [n, d] on the CPU.</param>
    /// <param name="names">One name per row (file names for image folders); null writes the row index.</param>
    public static void WriteCsv(string path, Tensor embeddings, IReadOnlyList<string>? names)
    {
        if (embeddings.dim() != 2) throw new ArgumentException($"embeddings must be [n, d], got [{string.Join(", ", embeddings.shape)}]");
        int rows = (int)embeddings.shape[0], columns = (int)embeddings.shape[1];
        float[] values = FloatValues(embeddings);
        if (names != null && names.Count != rows) throw new ArgumentException($"{names.Count} names for {rows} embeddings");
        AtomicFile.Write(path, stream =>
        {
            using var writer = new StreamWriter(stream, new UTF8Encoding(false), leaveOpen: true);
            writer.WriteLine(string.Join(",", new[] { "image" }.Concat(Enumerable.Range(0, columns).Select(c => $"f{c}"))));
            var line = new StringBuilder();
            for (int r = 0; r < rows; r++)
            {
                line.Clear();
                line.Append(names == null ? r.ToString(CultureInfo.InvariantCulture) : Quote(names[r]));
                for (int c = 0; c < columns; c++) line.Append(',').Append(values[r * columns + c].ToString("R", CultureInfo.InvariantCulture));
                writer.WriteLine(line);
            }
        });
    }

    /// <summary>NumPy format 1.0 of a float32 tensor of any shape: magic, a header dict padded to 64 bytes, then the row-major data.</summary>
    public static void WriteNpy(string path, Tensor tensor)
    {
        float[] values = FloatValues(tensor);
        string shape = tensor.dim() == 1 ? $"({tensor.shape[0]},)" : $"({string.Join(", ", tensor.shape)})";
        string dictionary = $"{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}";
        int unpadded = 10 + dictionary.Length + 1;
        string header = dictionary + new string(' ', (64 - unpadded % 64) % 64) + "\n";
        AtomicFile.Write(path, stream =>
        {
            using var writer = new BinaryWriter(stream, Encoding.ASCII, leaveOpen: true);
            writer.Write(new byte[] { 0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', 1, 0 });
            writer.Write((ushort)header.Length);
            writer.Write(Encoding.ASCII.GetBytes(header));
            foreach (float value in values) writer.Write(value);
        });
    }

    /// <summary>The tensor's values as float32, row-major, copied to the CPU.</summary>
    static float[] FloatValues(Tensor tensor)
    {
        // The scope frees the converted copies, never the caller's tensor (which was made outside it).
        using var scope = NewDisposeScope();
        return tensor.to_type(ScalarType.Float32).cpu().contiguous().data<float>().ToArray();
    }

    static string Quote(string name) =>
        name.IndexOfAny(new[] { ',', '"', '\n', '\r' }) < 0 ? name : "\"" + name.Replace("\"", "\"\"") + "\"";
}
