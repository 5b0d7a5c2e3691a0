"""A calm dark theme (Fusion + palette + a small style sheet)."""

from __future__ import annotations

from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

ACCENT = "#5b8def"

STYLE_SHEET = f"""
QMainWindow, QDialog {{ background: #1b1d23; }}
QFrame#controls {{ background: #20232a; border-right: 1px solid #2c3038; }}
QWidget#formHolder {{ background: transparent; }}
QLabel#sectionLabel {{ color: #9aa3b2; font-weight: 600; }}
QLabel#hint {{ color: #8b93a1; }}
QLabel#placeholderTitle {{ font-size: 20px; font-weight: 600; color: #c9ced8; }}
QLabel#statusItem {{ color: #aab2bf; padding: 0 10px; border-left: 1px solid #2f333b; }}
QPushButton {{ padding: 5px 12px; border-radius: 5px; background: #2d313a; border: 1px solid #3a3f4a; }}
QPushButton:hover {{ background: #353a45; }}
QPushButton:disabled {{ color: #6b7280; background: #262930; border-color: #2e323a; }}
QPushButton#primary {{ background: {ACCENT}; border: 1px solid #6e9bf2; color: white; font-weight: 600;
                       font-size: 14px; }}
QPushButton#primary:hover {{ background: #6b99f2; }}
QPushButton#primary:disabled {{ background: #3a4760; color: #aab4c8; }}
QPushButton#segment {{ border-radius: 0; padding: 6px 8px; }}
QPushButton#segment[position="first"] {{ border-top-left-radius: 5px; border-bottom-left-radius: 5px; }}
QPushButton#segment[position="last"] {{ border-top-right-radius: 5px; border-bottom-right-radius: 5px; }}
QPushButton#segment:checked {{ background: #34476b; border-color: {ACCENT}; color: white; }}
QToolButton {{ border-radius: 4px; padding: 3px; }}
QToolButton:hover {{ background: #343944; }}
QToolButton#foldButton {{ color: #9aa3b2; font-weight: 600; padding: 2px 0; }}
QPlainTextEdit {{ background: #16181d; border: 1px solid #353a45; border-radius: 4px; padding: 2px; }}
QPlainTextEdit:focus {{ border-color: {ACCENT}; }}
QLabel[invalid="true"] {{ color: #f28b82; font-weight: 600; }}
QLineEdit[invalid="true"], QPlainTextEdit[invalid="true"] {{ border: 1px solid #e0616b; }}
QProgressBar {{ border: 1px solid #353a45; border-radius: 4px; background: #16181d; text-align: center;
                min-height: 20px; color: #d6d9e0; }}
QProgressBar::chunk {{ background: #3f6fc9; border-radius: 3px; }}
QListWidget#gallery {{ background: #181a1f; border: none; border-top: 1px solid #2c3038; }}
QListWidget#gallery::item {{ border-radius: 4px; }}
QListWidget#gallery::item:selected {{ background: #34476b; }}
QTabWidget::pane {{ border: none; }}
QTabBar {{ qproperty-drawBase: 0; }}
QTabBar::tab {{ background: transparent; color: #9aa3b2; padding: 7px 18px; border: none;
                border-bottom: 2px solid transparent; }}
QTabBar::tab:hover {{ color: #d6d9e0; }}
QTabBar::tab:selected {{ color: #ffffff; border-bottom: 2px solid {ACCENT}; }}
QTabWidget#panelTabs > QTabBar {{ background: #181a1f; }}
QStatusBar {{ background: #181a1f; color: #aab2bf; }}
QScrollArea {{ background: transparent; }}
"""


def apply_theme(app: QApplication) -> None:
    app.setStyle("Fusion")
    palette = QPalette()
    colours = {
        QPalette.ColorRole.Window: "#1b1d23",
        QPalette.ColorRole.WindowText: "#d6d9e0",
        QPalette.ColorRole.Base: "#16181d",
        QPalette.ColorRole.AlternateBase: "#20232a",
        QPalette.ColorRole.ToolTipBase: "#2d313a",
        QPalette.ColorRole.ToolTipText: "#e5e7eb",
        QPalette.ColorRole.Text: "#d6d9e0",
        QPalette.ColorRole.Button: "#2d313a",
        QPalette.ColorRole.ButtonText: "#d6d9e0",
        QPalette.ColorRole.BrightText: "#ffffff",
        QPalette.ColorRole.Highlight: ACCENT,
        QPalette.ColorRole.HighlightedText: "#ffffff",
        QPalette.ColorRole.Link: ACCENT,
        QPalette.ColorRole.PlaceholderText: "#6b7280",
    }
    for role, colour in colours.items():
        palette.setColor(role, QColor(colour))
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText, QPalette.ColorRole.WindowText):
        palette.setColor(QPalette.ColorGroup.Disabled, role, QColor("#6b7280"))
    app.setPalette(palette)
    app.setStyleSheet(STYLE_SHEET)
