// Charts with Chart.js (tree-shaken: only the parts used). Charts are updated in place on live changes.
import {
  ArcElement, BarController, BarElement, CategoryScale, Chart, DoughnutController, Legend, LinearScale,
  LineController, LineElement, PointElement, Tooltip, type ChartConfiguration,
} from "chart.js";

Chart.register(ArcElement, BarController, BarElement, CategoryScale, DoughnutController, Legend, LinearScale,
  LineController, LineElement, PointElement, Tooltip);

export const PALETTE = ["#2563eb", "#16a34a", "#f59e0b", "#dc2626", "#7c3aed", "#0891b2", "#db2777", "#65a30d"];

export interface Series { label: string; values: (number | null)[] }

export function chartOn(canvas: HTMLCanvasElement, config: ChartConfiguration): Chart {
  return new Chart(canvas, config);
}

export function doughnut(labels: string[], values: number[]): ChartConfiguration {
  return {
    type: "doughnut",
    data: { labels, datasets: [{ data: values, backgroundColor: labels.map((_, i) => PALETTE[i % PALETTE.length]!) }] },
    options: { responsive: true, maintainAspectRatio: false, animation: false, plugins: { legend: { position: "right" } } },
  };
}

export function lines(labels: string[], series: Series[], kind: "line" | "bar" = "line", percent = false): ChartConfiguration {
  return {
    type: kind,
    data: {
      labels,
      datasets: series.map((s, i) => ({
        label: s.label, data: s.values, borderColor: PALETTE[i % PALETTE.length]!,
        backgroundColor: PALETTE[i % PALETTE.length]!, tension: 0.2, spanGaps: true,
      })),
    },
    options: {
      responsive: true, maintainAspectRatio: false, animation: false,
      scales: { y: { beginAtZero: true, ...(percent ? { max: 100 } : {}) } },
      plugins: { legend: { position: "bottom" } },
    },
  };
}

export function updateDoughnut(chart: Chart, labels: string[], values: number[]): void {
  chart.data.labels = labels;
  const dataset = chart.data.datasets[0]!;
  dataset.data = values;
  dataset.backgroundColor = labels.map((_, i) => PALETTE[i % PALETTE.length]!);
  chart.update();
}
